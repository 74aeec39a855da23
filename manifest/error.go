package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Problem is one mistake in a manifest. Line and Column are 1-based.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path,omitempty"` // key path such as services.web.health.interval
	Message string `json:"message"`
}

// String renders the problem as "file:line:col: path: message", the form
// editors and CI logs recognise.
func (p Problem) String() string {
	if p.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", p.File, p.Line, p.Column, p.Path, p.Message)
}

// Error is returned by Decode for bad input. It holds every problem found,
// so that a user fixes a manifest in one round rather than one line per try.
//
// Its chain holds a *gantry.Error with code EINVALID whose message is the
// full list, so gantry.ErrorCode and gantry.ErrorMessage work on it.
type Error struct {
	Problems []Problem
}

// Error lists the problems, one "file:line:col: path: message" per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the coded error that the API and the CLI map to "invalid".
func (e *Error) Unwrap() error {
	return &gantry.Error{Code: gantry.EINVALID, Message: e.Error()}
}

// sortProblems orders problems by position so that output follows the file;
// the sort is stable so problems at one spot keep the order they were found in.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Column, b.Column)
	})
}
