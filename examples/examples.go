// Package examples carries the sample apps inside the gantry binary, so that
// `gantry demo` can create a repository from one with nothing else installed.
// The apps are built by their own build commands, never imported.
package examples

import "embed"

// Hello is the examples/hello app: a small web page that shows its version.
//
//go:embed hello
var Hello embed.FS
