package lupa

/*
#include "lupa.h"
*/
import "C"

import (
	"context"
	"fmt"
)

// Code is a stable error code of liblupa (lupa_code in lupa.h). Codes below
// 9000 are the codes of Lupa's semantics, numbered after their HTTP status
// (Code/10); 9000 and above belong to the C ABI and this module.
type Code uint32

// The codes. Compare errors with errors.Is and the Err* sentinels instead
// of comparing codes by hand.
const (
	CodeOK                      Code = C.LUPA_CODE_OK
	CodeInvalidArgument         Code = C.LUPA_CODE_INVALID_ARGUMENT
	CodeNoProductionDeployment  Code = C.LUPA_CODE_NO_PRODUCTION_DEPLOYMENT
	CodeNoStagingDeployment     Code = C.LUPA_CODE_NO_STAGING_DEPLOYMENT
	CodeDeploymentNotInProject  Code = C.LUPA_CODE_DEPLOYMENT_NOT_IN_PROJECT
	CodeDeploymentNotReady      Code = C.LUPA_CODE_DEPLOYMENT_NOT_READY
	CodeInvalidAPIKey           Code = C.LUPA_CODE_INVALID_API_KEY
	CodeProjectNotFound         Code = C.LUPA_CODE_PROJECT_NOT_FOUND
	CodeDeploymentNotFound      Code = C.LUPA_CODE_DEPLOYMENT_NOT_FOUND
	CodeProjectExists           Code = C.LUPA_CODE_PROJECT_EXISTS
	CodeDeploymentExists        Code = C.LUPA_CODE_DEPLOYMENT_EXISTS
	CodeInvalidStatusTransition Code = C.LUPA_CODE_INVALID_STATUS_TRANSITION
	CodeProductionConflict      Code = C.LUPA_CODE_PRODUCTION_CONFLICT
	CodeNoRollbackTarget        Code = C.LUPA_CODE_NO_ROLLBACK_TARGET
	CodeInternal                Code = C.LUPA_CODE_INTERNAL
	CodeStorageUnavailable      Code = C.LUPA_CODE_STORAGE_UNAVAILABLE
	CodeNullArgument            Code = C.LUPA_CODE_NULL_ARGUMENT
	CodeHandleClosed            Code = C.LUPA_CODE_HANDLE_CLOSED
	CodeTimeout                 Code = C.LUPA_CODE_TIMEOUT
	CodeReentrantCall           Code = C.LUPA_CODE_REENTRANT_CALL
	CodeNoCache                 Code = C.LUPA_CODE_NO_CACHE
)

// String is the stable name, for example "NO_PRODUCTION_DEPLOYMENT".
func (c Code) String() string {
	return C.GoString(C.lupa_code_name(C.uint32_t(c)))
}

// HTTPStatus is the status an HTTP server answers with for the code.
func (c Code) HTTPStatus() int {
	return int(C.lupa_code_http_status(C.uint32_t(c)))
}

// Error is every error of this module: a stable code, the HTTP status and
// a message (which never contains a password or an API key).
type Error struct {
	Code       Code
	HTTPStatus int
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("lupa: %s: %s", e.Code, e.Message)
}

// Is makes errors.Is(err, lupa.ErrProjectNotFound) work (errors match by
// code), and errors.Is(err, context.DeadlineExceeded) for a call that ran
// out of time.
func (e *Error) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Code == e.Code
	}
	return target == context.DeadlineExceeded && e.Code == CodeTimeout
}

// HTTPBody is the JSON body an HTTP server answers with:
// {"error": {"code": ..., "message": ...}}.
func (e *Error) HTTPBody() string {
	var cerr C.lupa_error
	cerr.code = C.lupa_code(e.Code)
	msg := e.Message
	if len(msg) >= C.LUPA_ERROR_MESSAGE_LEN {
		msg = msg[:C.LUPA_ERROR_MESSAGE_LEN-1]
	}
	for i := 0; i < len(msg); i++ {
		cerr.message[i] = C.char(msg[i])
	}
	var out *C.char
	if C.lupa_error_http_body(&cerr, &out, nil) != C.LUPA_CODE_OK {
		return `{"error":{"code":"INTERNAL","message":"Internal error"}}`
	}
	defer C.lupa_string_free(out)
	return C.GoString(out)
}

func sentinel(c Code) *Error { return &Error{Code: c, HTTPStatus: c.HTTPStatus(), Message: c.String()} }

// Sentinels for errors.Is: an error of the module matches the sentinel of
// its code.
var (
	ErrInvalidArgument         = sentinel(CodeInvalidArgument)
	ErrNoProductionDeployment  = sentinel(CodeNoProductionDeployment)
	ErrNoStagingDeployment     = sentinel(CodeNoStagingDeployment)
	ErrDeploymentNotInProject  = sentinel(CodeDeploymentNotInProject)
	ErrDeploymentNotReady      = sentinel(CodeDeploymentNotReady)
	ErrInvalidAPIKey           = sentinel(CodeInvalidAPIKey)
	ErrProjectNotFound         = sentinel(CodeProjectNotFound)
	ErrDeploymentNotFound      = sentinel(CodeDeploymentNotFound)
	ErrProjectExists           = sentinel(CodeProjectExists)
	ErrDeploymentExists        = sentinel(CodeDeploymentExists)
	ErrInvalidStatusTransition = sentinel(CodeInvalidStatusTransition)
	ErrProductionConflict      = sentinel(CodeProductionConflict)
	ErrNoRollbackTarget        = sentinel(CodeNoRollbackTarget)
	ErrInternal                = sentinel(CodeInternal)
	ErrStorageUnavailable      = sentinel(CodeStorageUnavailable)
	// ErrClosed: the Client was closed.
	ErrClosed = sentinel(CodeHandleClosed)
	// ErrTimeout: the call ran out of time (it also matches
	// context.DeadlineExceeded). A change may or may not have been made.
	ErrTimeout = sentinel(CodeTimeout)
	// ErrNoCache: a cache operation on a Client opened without a cache.
	ErrNoCache = sentinel(CodeNoCache)
)

func fromC(code C.lupa_code, cerr *C.lupa_error) error {
	if code == C.LUPA_CODE_OK {
		return nil
	}
	return &Error{
		Code:       Code(code),
		HTTPStatus: int(cerr.http_status),
		Message:    C.GoString(&cerr.message[0]),
	}
}
