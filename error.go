package gantry

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes. They are part of the API contract: the HTTP layer maps them to
// status codes and the CLI maps them to exit codes.
const (
	ECONFLICT     = "conflict"     // a lock is held, or the object already exists
	EINTERNAL     = "internal"     // a bug or an unexpected failure; details are logged, not shown
	EINVALID      = "invalid"      // the request or the input is wrong
	ENOTFOUND     = "not_found"    // the object does not exist
	EFORBIDDEN    = "forbidden"    // the actor lacks a permission
	EUNAUTHORIZED = "unauthorized" // no or an unknown credential
	EPOLICY       = "policy"       // refused by policy: promote_from, approvals, freeze, contract safety
	EUNAVAILABLE  = "unavailable"  // a dependency did not answer in time (health round, drain)
	EFAILED       = "failed"       // an operation ran and failed: a build, a health check, a verify check
)

// Error is an error with a code that callers may act on, and a message that
// is safe to show to a user.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("gantry error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, and
// "internal error" for any other non-nil error so that internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus is the HTTP status that answers an error of code: the one map
// from codes to statuses, used by the API, the dashboard and the router's
// admin API alike, so a refusal is a 403 wherever it is answered.
func HTTPStatus(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case EINVALID:
		return http.StatusBadRequest
	case ENOTFOUND:
		return http.StatusNotFound
	case ECONFLICT:
		return http.StatusConflict
	case EPOLICY, EFORBIDDEN:
		return http.StatusForbidden
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case EFAILED:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// ExitCode maps an error to the CLI's exit codes: 0 ok, 1 failed, 2 usage,
// 3 conflict or locked, 4 refused by policy.
func ExitCode(err error) int {
	switch ErrorCode(err) {
	case "":
		return 0
	case EINVALID:
		return 2
	case ECONFLICT:
		return 3
	case EPOLICY, EFORBIDDEN:
		return 4
	default:
		return 1
	}
}

// CommandLine is a gantry command that an error message advises, written
// so that it works as printed: it names the environment and, when known,
// the app (--app), so that it works from any directory and with several
// apps registered. Example: CommandLine("db rollback", "prod", "shop",
// "--force") is "gantry db rollback prod --force --app shop".
func CommandLine(verb, env, app string, flags ...string) string {
	parts := append([]string{"gantry", verb, env}, flags...)
	if app != "" {
		parts = append(parts, "--app", app)
	}
	return strings.Join(parts, " ")
}
