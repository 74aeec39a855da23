package postgres

import (
	"fmt"
	"time"
)

// timeLayout is RFC 3339 with a fixed nine-digit fraction. Written in UTC
// every value has the same width, so byte order (the columns are COLLATE
// "C") is time order, and the nanoseconds that timestamptz would drop are
// kept.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// timeArg is the column value of t: NULL for the zero time.
func timeArg(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeLayout)
	return &s
}

// timeCol scans a column written by timeArg into *t (zero for NULL).
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner, which pgx calls with the text value.
func (c timeCol) Scan(v any) error {
	var s string
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("time column: unexpected %T", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*c.t = t.UTC()
	return nil
}
