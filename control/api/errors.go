package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an API error: the JSON body of every failed request, and the
// error of a websocket reply of type "error". Code is stable and meant for
// programs; Message is for people. The client returns *Error for any
// failure the server reported; errors.Is matches it against the sentinels
// below by Code.
type Error struct {
	Status  int    `json:"status,omitempty"` // the HTTP status
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return fmt.Sprintf("faultline: %s (%s)", e.Message, e.Code) }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an error with the status and code of kind and a message.
func Errorf(kind *Error, format string, a ...any) *Error {
	return &Error{Status: kind.Status, Code: kind.Code, Message: fmt.Sprintf(format, a...)}
}

// The API's errors, by code. Match with errors.Is.
var (
	ErrBadJSON         = &Error{Status: http.StatusBadRequest, Code: "bad_json", Message: "body is not valid JSON"}
	ErrBadRequest      = &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "invalid request"}
	ErrUnknownKind     = &Error{Status: http.StatusBadRequest, Code: "unknown_kind", Message: "unknown fault kind"}
	ErrBadFault        = &Error{Status: http.StatusBadRequest, Code: "bad_fault", Message: "invalid fault"}
	ErrUnauthorized    = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or wrong bearer token"}
	ErrForbiddenOrigin = &Error{Status: http.StatusForbidden, Code: "forbidden_origin", Message: "origin not allowed"}
	ErrForbiddenHost   = &Error{Status: http.StatusForbidden, Code: "forbidden_host", Message: "host not allowed"}
	ErrNotFound        = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	ErrMethod          = &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed"}
	ErrNameTaken       = &Error{Status: http.StatusConflict, Code: "name_taken", Message: "name taken"}
	ErrPortInUse       = &Error{Status: http.StatusConflict, Code: "port_in_use", Message: "address in use"}
	ErrTooManyFaults   = &Error{Status: http.StatusConflict, Code: "too_many_faults", Message: "the proxy holds the most faults it takes"}
	ErrCursorExpired   = &Error{Status: http.StatusGone, Code: "cursor_expired", Message: "events after the cursor are no longer kept"}
	ErrTooLarge        = &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "request body too large"}
	ErrInternal        = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	ErrUnavailable     = &Error{Status: http.StatusServiceUnavailable, Code: "closing", Message: "server is closing"}
)
