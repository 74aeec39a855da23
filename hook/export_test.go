package hook

import "time"

// Exported for the tests of package hook_test only.
var RedactURL = redactURL

func BackoffFor(r *Runner, n int) time.Duration { return r.backoff(n) }
