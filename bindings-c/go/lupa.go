// Package lupa embeds Lupa core through liblupa (include/lupa.h): which
// deployment of a knowledge base a request reaches, and the changes that
// move it (promote, rollback, status), with the exact semantics of every
// other Lupa binding.
//
// A Client is safe for many goroutines. Each call blocks its goroutine's OS
// thread while liblupa works (cgo), so N concurrent calls hold N threads;
// nothing calls back from the library into Go. A context's deadline becomes
// the call's timeout (an expired deadline gives an error that matches both
// ErrTimeout and context.DeadlineExceeded); a context without a deadline
// uses the Client's default (Options.CallTimeout). Cancelling a context
// without a deadline is noticed before the call starts, not during it.
//
// Build: point cgo at the library, for example
//
//	CGO_LDFLAGS="-L$REPO/target/debug -llupa -Wl,-rpath,$REPO/target/debug" go build
//
// (the header is found through the module's own path to include/).
package lupa

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -llupa
#include <stdlib.h>
#include "lupa.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Version is the version of the linked liblupa.
func Version() string { return C.GoString(C.lupa_version()) }

// HeaderVersion is the version of the lupa.h this module was compiled with.
const HeaderVersion = C.LUPA_VERSION

// Options for Open; zero values mean the library's defaults.
type Options struct {
	// KeyPrefix goes in front of every cache key (default none).
	KeyPrefix string
	// Schema is the PostgreSQL schema (default "public"; created when missing).
	Schema string
	// PoolSize is the most store connections.
	PoolSize uint32
	// CacheTimeout: the longest wait for the cache before it counts as a miss.
	CacheTimeout time.Duration
	// StoreTimeout: the longest wait for one store operation.
	StoreTimeout time.Duration
	// BreakerThreshold: consecutive cache failures that open the breaker.
	BreakerThreshold uint32
	// BreakerCooldown: how long an open breaker skips the cache.
	BreakerCooldown time.Duration
	// OutboxInterval: how often pending cache updates are applied.
	OutboxInterval time.Duration
	// CallTimeout: the timeout of calls whose context has no deadline
	// (default 30 s).
	CallTimeout time.Duration
	// NoLocalCache turns off the in-process tier (answers kept in process
	// memory in front of the shared cache; on by default).
	NoLocalCache bool
	// LocalCapacity: the most projects the in-process tier holds.
	LocalCapacity uint32
	// LocalBound: the longest an answer in memory is used while the
	// invalidation channel is down (default 1 s).
	LocalBound time.Duration
	// NoMetrics turns off counting (Stats and MetricsText then answer all
	// zero; on by default).
	NoMetrics bool
}

func (o *Options) json() (string, error) {
	m := map[string]interface{}{}
	if o == nil {
		return "{}", nil
	}
	if o.KeyPrefix != "" {
		m["key_prefix"] = o.KeyPrefix
	}
	if o.Schema != "" {
		m["schema"] = o.Schema
	}
	if o.PoolSize != 0 {
		m["pool_size"] = o.PoolSize
	}
	if o.BreakerThreshold != 0 {
		m["breaker_threshold"] = o.BreakerThreshold
	}
	if o.NoLocalCache {
		m["local_cache"] = false
	}
	if o.NoMetrics {
		m["metrics"] = false
	}
	if o.LocalCapacity != 0 {
		m["local_capacity"] = o.LocalCapacity
	}
	for name, d := range map[string]time.Duration{
		"cache_timeout_ms": o.CacheTimeout, "store_timeout_ms": o.StoreTimeout,
		"breaker_cooldown_ms": o.BreakerCooldown, "outbox_interval_ms": o.OutboxInterval,
		"call_timeout_ms": o.CallTimeout, "local_bound_ms": o.LocalBound,
	} {
		if d < 0 {
			return "", &Error{Code: CodeInvalidArgument, HTTPStatus: 400, Message: name + " must not be negative"}
		}
		if d > 0 {
			m[name] = ceilMillis(d)
		}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func ceilMillis(d time.Duration) uint64 {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms < 1 {
		ms = 1
	}
	return uint64(ms)
}

// Client is an open Lupa handle. Safe for concurrent use.
type Client struct {
	mu sync.RWMutex // held shared by calls, exclusively by Close
	h  *C.lupa_handle
}

// timeoutOf maps a context to a call timeout in milliseconds (0: the
// handle's default).
func timeoutOf(ctx context.Context) (C.uint64_t, error) {
	if err := ctx.Err(); err != nil {
		if err == context.DeadlineExceeded {
			return 0, &deadlineError{}
		}
		return 0, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	left := time.Until(deadline)
	if left <= 0 {
		return 0, &deadlineError{}
	}
	return C.uint64_t(ceilMillis(left)), nil
}

// deadlineError: the deadline had passed before the call started.
type deadlineError struct{}

func (*deadlineError) Error() string { return "lupa: TIMEOUT: the context deadline has passed" }
func (*deadlineError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == error(ErrTimeout)
}

// cstrings converts Go strings for one call; free releases them.
type cstrings struct{ ptrs []*C.char }

func (c *cstrings) add(name, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{Code: CodeInvalidArgument, HTTPStatus: 400, Message: name + " contains a NUL byte"}
	}
	p := C.CString(s)
	c.ptrs = append(c.ptrs, p)
	return p, nil
}

// opt is add, with "" meaning NULL (none).
func (c *cstrings) opt(name, s string) (*C.char, error) {
	if s == "" {
		return nil, nil
	}
	return c.add(name, s)
}

func (c *cstrings) free() {
	for _, p := range c.ptrs {
		C.free(unsafe.Pointer(p))
	}
}

// Open opens a handle on a store ("postgres://...", "sqlite://path",
// "sqlite::memory:", "memory://") and a cache ("redis://...", "memory://",
// "none"). ctx's deadline bounds opening (default 30 s).
func Open(ctx context.Context, storeURL, cacheURL string, opts *Options) (*Client, error) {
	timeout, err := timeoutOf(ctx)
	if err != nil {
		return nil, err
	}
	o, err := opts.json()
	if err != nil {
		return nil, err
	}
	var cs cstrings
	defer cs.free()
	store, err := cs.add("storeURL", storeURL)
	if err != nil {
		return nil, err
	}
	cache, err := cs.add("cacheURL", cacheURL)
	if err != nil {
		return nil, err
	}
	copts, err := cs.add("options", o)
	if err != nil {
		return nil, err
	}
	var h *C.lupa_handle
	var cerr C.lupa_error
	if err := fromC(C.lupa_open(store, cache, copts, timeout, &h, &cerr), &cerr); err != nil {
		return nil, err
	}
	c := &Client{h: h}
	// A Client dropped without Close still releases its handle.
	runtime.SetFinalizer(c, (*Client).Close)
	return c, nil
}

// Close closes the handle: calls running on other goroutines end (with
// their result or ErrClosed), later calls fail with ErrClosed. Closing twice
// is harmless.
func (c *Client) Close() error {
	c.mu.RLock()
	h := c.h
	c.mu.RUnlock()
	if h == nil {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	C.lupa_close(h) // wakes calls in flight; safe while they run
	c.mu.Lock()     // waits until they have returned
	defer c.mu.Unlock()
	if c.h != nil {
		C.lupa_free(c.h)
		c.h = nil
	}
	return nil
}

// call runs one C call on the handle with ctx's timeout.
func (c *Client) call(ctx context.Context, f func(h *C.lupa_handle, timeout C.uint64_t, cerr *C.lupa_error) C.lupa_code) error {
	timeout, err := timeoutOf(ctx)
	if err != nil {
		return err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return &Error{Code: CodeHandleClosed, HTTPStatus: CodeHandleClosed.HTTPStatus(), Message: "the client is closed"}
	}
	var cerr C.lupa_error
	return fromC(f(c.h, timeout, &cerr), &cerr)
}

// callJSON runs a C call that hands out a JSON string and decodes it.
func (c *Client) callJSON(ctx context.Context, into interface{}, f func(h *C.lupa_handle, timeout C.uint64_t, out **C.char, cerr *C.lupa_error) C.lupa_code) error {
	var out *C.char
	err := c.call(ctx, func(h *C.lupa_handle, timeout C.uint64_t, cerr *C.lupa_error) C.lupa_code {
		return f(h, timeout, &out, cerr)
	})
	if out != nil {
		defer C.lupa_string_free(out)
	}
	if err != nil {
		return err
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal([]byte(C.GoString(out)), into); err != nil {
		return fmt.Errorf("lupa: decoding a result: %w", err)
	}
	return nil
}

func climit(limit int) (C.uint32_t, error) {
	if limit < 0 || limit > math.MaxUint32 {
		return 0, &Error{Code: CodeInvalidArgument, HTTPStatus: 400, Message: "limit must be 1 to 1000, or 0 for the default"}
	}
	return C.uint32_t(limit), nil
}

// ----- types -----------------------------------------------------------------

// Project owns deployments.
type Project struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Deployment is a version of a project's knowledge base.
type Deployment struct {
	ID               string    `json:"id"`
	ProjectID        string    `json:"project_id"`
	SnapshotID       string    `json:"snapshot_id"`
	Environment      string    `json:"environment"` // "production" or "staging"
	Status           string    `json:"status"`      // "processing", "ready" or "failed"
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	FailureMessage   *string   `json:"failure_message"`
	PromoteWhenReady bool      `json:"promote_when_ready"`
}

// DeploymentChange is what a change of one deployment returns.
type DeploymentChange struct {
	Deployment Deployment
	// CachePending: the shared cache could not be reached; the change stands
	// and its cache update is applied as soon as the cache is back.
	CachePending bool
}

// DeploymentSummary is the short form promote and rollback answer with.
type DeploymentSummary struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Status      string `json:"status"`
}

// Promotion is what Promote and Rollback return.
type Promotion struct {
	Deployment   DeploymentSummary
	Demoted      string // the former production, now staging ("" for none)
	CachePending bool
}

// HistoryEntry is one recorded environment change.
type HistoryEntry struct {
	Seq          int64     `json:"seq"`
	DeploymentID string    `json:"deployment_id"`
	From         string    `json:"from"`
	To           string    `json:"to"`
	At           time.Time `json:"at"`
}

// Page is one page of a listing; pass NextCursor for the next ("" at the end).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func (p page[T]) page() Page[T] {
	out := Page[T]{Items: p.Items}
	if p.NextCursor != nil {
		out.NextCursor = *p.NextCursor
	}
	return out
}

type changed[T any] struct {
	Value        T    `json:"value"`
	CachePending bool `json:"cache_pending"`
}

type promotion struct {
	Deployment DeploymentSummary `json:"deployment"`
	Demoted    *string           `json:"demoted"`
}

// ----- projects ----------------------------------------------------------------

// NewProject describes a project to create.
type NewProject struct {
	ID    string // "" to generate one
	OrgID string
	Name  string
}

// CreateProject creates a project (ErrProjectExists when the id is taken).
func (c *Client) CreateProject(ctx context.Context, p NewProject) (Project, error) {
	var out Project
	var cs cstrings
	defer cs.free()
	id, err := cs.opt("ID", p.ID)
	if err != nil {
		return out, err
	}
	org, err := cs.add("OrgID", p.OrgID)
	if err != nil {
		return out, err
	}
	name, err := cs.add("Name", p.Name)
	if err != nil {
		return out, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_create_project(h, id, org, name, t, o, e)
	})
	return out, err
}

// GetProject returns one project (ErrProjectNotFound).
func (c *Client) GetProject(ctx context.Context, id string) (Project, error) {
	var out Project
	var cs cstrings
	defer cs.free()
	cid, err := cs.add("id", id)
	if err != nil {
		return out, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_get_project(h, cid, t, o, e)
	})
	return out, err
}

// ListProjects lists projects in id order; limit 0 means 100.
func (c *Client) ListProjects(ctx context.Context, limit int, cursor string) (Page[Project], error) {
	var out page[Project]
	var cs cstrings
	defer cs.free()
	cl, err := climit(limit)
	if err != nil {
		return Page[Project]{}, err
	}
	cc, err := cs.opt("cursor", cursor)
	if err != nil {
		return Page[Project]{}, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_list_projects(h, cl, cc, t, o, e)
	})
	return out.page(), err
}

// DeleteProject deletes a project with its deployments and history; it
// reports whether the cache update is still pending.
func (c *Client) DeleteProject(ctx context.Context, id string) (cachePending bool, err error) {
	var out changed[json.RawMessage]
	var cs cstrings
	defer cs.free()
	cid, err := cs.add("id", id)
	if err != nil {
		return false, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_delete_project(h, cid, t, o, e)
	})
	return out.CachePending, err
}

// ----- deployments ---------------------------------------------------------------

// NewDeployment describes a deployment to create (it starts "processing").
type NewDeployment struct {
	Project  string
	ID       string // "" to generate one
	Snapshot string
	// Environment: "" or "staging"; "production" is promoted the moment it is ready.
	Environment string
	// CreatedAt: zero for now.
	CreatedAt time.Time
}

func (c *Client) deploymentChange(ctx context.Context, f func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code) (DeploymentChange, error) {
	var out changed[Deployment]
	err := c.callJSON(ctx, &out, f)
	return DeploymentChange{Deployment: out.Value, CachePending: out.CachePending}, err
}

// CreateDeployment creates a deployment.
func (c *Client) CreateDeployment(ctx context.Context, d NewDeployment) (DeploymentChange, error) {
	var cs cstrings
	defer cs.free()
	created := ""
	if !d.CreatedAt.IsZero() {
		created = d.CreatedAt.Format(time.RFC3339Nano)
	}
	var ptrs [5]*C.char
	for i, a := range []struct{ name, value string }{
		{"Project", d.Project}, {"ID", d.ID}, {"Snapshot", d.Snapshot}, {"Environment", d.Environment}, {"CreatedAt", created},
	} {
		var err error
		if i == 0 || i == 2 {
			ptrs[i], err = cs.add(a.name, a.value)
		} else {
			ptrs[i], err = cs.opt(a.name, a.value)
		}
		if err != nil {
			return DeploymentChange{}, err
		}
	}
	return c.deploymentChange(ctx, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_create_deployment(h, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], t, o, e)
	})
}

// GetDeployment returns one deployment of any project (ErrDeploymentNotFound).
func (c *Client) GetDeployment(ctx context.Context, id string) (Deployment, error) {
	var out Deployment
	var cs cstrings
	defer cs.free()
	cid, err := cs.add("id", id)
	if err != nil {
		return out, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_get_deployment(h, cid, t, o, e)
	})
	return out, err
}

// ListDeployments lists a project's deployments, newest first; limit 0 means 100.
func (c *Client) ListDeployments(ctx context.Context, project string, limit int, cursor string) (Page[Deployment], error) {
	var out page[Deployment]
	var cs cstrings
	defer cs.free()
	cl, err := climit(limit)
	if err != nil {
		return Page[Deployment]{}, err
	}
	cp, err := cs.add("project", project)
	if err != nil {
		return Page[Deployment]{}, err
	}
	cc, err := cs.opt("cursor", cursor)
	if err != nil {
		return Page[Deployment]{}, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_list_deployments(h, cp, cl, cc, t, o, e)
	})
	return out.page(), err
}

// SetStatus is the processing task's call: status "ready" or "failed",
// with an optional failure message ("" for none).
func (c *Client) SetStatus(ctx context.Context, deployment, status, message string) (DeploymentChange, error) {
	var cs cstrings
	defer cs.free()
	cd, err := cs.add("deployment", deployment)
	if err != nil {
		return DeploymentChange{}, err
	}
	cst, err := cs.add("status", status)
	if err != nil {
		return DeploymentChange{}, err
	}
	cm, err := cs.opt("message", message)
	if err != nil {
		return DeploymentChange{}, err
	}
	return c.deploymentChange(ctx, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_set_status(h, cd, cst, cm, t, o, e)
	})
}

func (c *Client) promotion(ctx context.Context, f func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code) (Promotion, error) {
	var out changed[promotion]
	err := c.callJSON(ctx, &out, f)
	p := Promotion{Deployment: out.Value.Deployment, CachePending: out.CachePending}
	if out.Value.Demoted != nil {
		p.Demoted = *out.Value.Demoted
	}
	return p, err
}

// Promote makes a ready deployment production, demoting the current one.
func (c *Client) Promote(ctx context.Context, project, deployment string) (Promotion, error) {
	var cs cstrings
	defer cs.free()
	cp, err := cs.add("project", project)
	if err != nil {
		return Promotion{}, err
	}
	cd, err := cs.add("deployment", deployment)
	if err != nil {
		return Promotion{}, err
	}
	return c.promotion(ctx, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_promote(h, cp, cd, t, o, e)
	})
}

// Rollback promotes the deployment that was production before the current one.
func (c *Client) Rollback(ctx context.Context, project string) (Promotion, error) {
	var cs cstrings
	defer cs.free()
	cp, err := cs.add("project", project)
	if err != nil {
		return Promotion{}, err
	}
	return c.promotion(ctx, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_rollback(h, cp, t, o, e)
	})
}

// SetEnvironment sets a deployment's environment ("production" or
// "staging") without demoting anyone (ErrProductionConflict).
func (c *Client) SetEnvironment(ctx context.Context, project, deployment, environment string) (DeploymentChange, error) {
	var cs cstrings
	defer cs.free()
	cp, err := cs.add("project", project)
	if err != nil {
		return DeploymentChange{}, err
	}
	cd, err := cs.add("deployment", deployment)
	if err != nil {
		return DeploymentChange{}, err
	}
	ce, err := cs.add("environment", environment)
	if err != nil {
		return DeploymentChange{}, err
	}
	return c.deploymentChange(ctx, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_set_environment(h, cp, cd, ce, t, o, e)
	})
}

// DeleteDeployment deletes a deployment (production included).
func (c *Client) DeleteDeployment(ctx context.Context, project, deployment string) (DeploymentChange, error) {
	var cs cstrings
	defer cs.free()
	cp, err := cs.add("project", project)
	if err != nil {
		return DeploymentChange{}, err
	}
	cd, err := cs.add("deployment", deployment)
	if err != nil {
		return DeploymentChange{}, err
	}
	return c.deploymentChange(ctx, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_delete_deployment(h, cp, cd, t, o, e)
	})
}

// History lists a project's environment changes, newest first.
func (c *Client) History(ctx context.Context, project string, limit int, cursor string) (Page[HistoryEntry], error) {
	var out page[HistoryEntry]
	var cs cstrings
	defer cs.free()
	cl, err := climit(limit)
	if err != nil {
		return Page[HistoryEntry]{}, err
	}
	cp, err := cs.add("project", project)
	if err != nil {
		return Page[HistoryEntry]{}, err
	}
	cc, err := cs.opt("cursor", cursor)
	if err != nil {
		return Page[HistoryEntry]{}, err
	}
	err = c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_history(h, cp, cl, cc, t, o, e)
	})
	return out.page(), err
}

// ----- resolution -------------------------------------------------------------------

// ResolveRequest is the middleware's question. Give exactly one caller:
// APIKeyEnvironment, APIKey, or Internal (with an optional
// TargetEnvironment). Empty strings mean "not given".
type ResolveRequest struct {
	Project string
	// DeploymentID is the Deployment-Id header ("" for none).
	DeploymentID string
	// DeploymentOptional: the route does not require a deployment (the
	// zero value, false, is the usual case: it does).
	DeploymentOptional bool
	// APIKeyEnvironment: "live" or "test", of a key the host authenticated.
	APIKeyEnvironment string
	// APIKey: a whole key string, parsed first.
	APIKey string
	// Internal: a service caller; TargetEnvironment "production" (default)
	// or "staging".
	Internal          bool
	TargetEnvironment string
}

// Resolution is the answer of Resolve.
type Resolution struct {
	// DeploymentID is "" only for a route that requires none and named none.
	DeploymentID string
	// Source is "local" (this process's memory), "cache" or "store".
	Source string
}

// Resolve says which deployment a request reaches.
func (c *Client) Resolve(ctx context.Context, r ResolveRequest) (Resolution, error) {
	var cs cstrings
	defer cs.free()
	var req C.lupa_resolve_request
	var err error
	if req.project, err = cs.add("Project", r.Project); err != nil {
		return Resolution{}, err
	}
	if req.deployment_id, err = cs.opt("DeploymentID", r.DeploymentID); err != nil {
		return Resolution{}, err
	}
	if req.api_key_environment, err = cs.opt("APIKeyEnvironment", r.APIKeyEnvironment); err != nil {
		return Resolution{}, err
	}
	if req.api_key, err = cs.opt("APIKey", r.APIKey); err != nil {
		return Resolution{}, err
	}
	if req.target_environment, err = cs.opt("TargetEnvironment", r.TargetEnvironment); err != nil {
		return Resolution{}, err
	}
	req.requires_deployment = C.bool(!r.DeploymentOptional)
	req.internal = C.bool(r.Internal)
	var out C.lupa_resolution
	err = c.call(ctx, func(h *C.lupa_handle, t C.uint64_t, e *C.lupa_error) C.lupa_code {
		return C.lupa_resolve(h, &req, t, &out, e)
	})
	if err != nil {
		return Resolution{}, err
	}
	res := Resolution{Source: "store"}
	switch out.source {
	case C.LUPA_SOURCE_CACHE:
		res.Source = "cache"
	case C.LUPA_SOURCE_LOCAL:
		res.Source = "local"
	}
	if out.has_deployment {
		res.DeploymentID = C.GoString(&out.deployment_id[0])
	}
	return res, nil
}

// APIKeyInfo is what a key string says about itself.
type APIKeyInfo struct {
	Type        string // "sk" or "pk"
	Environment string // "live" or "test"
}

// ParseAPIKey parses an API key string (format only; ErrInvalidAPIKey).
func ParseAPIKey(key string) (APIKeyInfo, error) {
	var cs cstrings
	defer cs.free()
	ck, err := cs.add("key", key)
	if err != nil {
		return APIKeyInfo{}, err
	}
	var out C.lupa_api_key_info
	var cerr C.lupa_error
	if err := fromC(C.lupa_parse_api_key(ck, &out, &cerr), &cerr); err != nil {
		return APIKeyInfo{}, err
	}
	info := APIKeyInfo{Type: "sk", Environment: "live"}
	if out.key_type == C.LUPA_KEY_TYPE_PK {
		info.Type = "pk"
	}
	if out.environment == C.LUPA_KEY_ENVIRONMENT_TEST {
		info.Environment = "test"
	}
	return info, nil
}

func stringCall(f func(out **C.char, cerr *C.lupa_error) C.lupa_code) (string, error) {
	var out *C.char
	var cerr C.lupa_error
	code := f(&out, &cerr)
	if out != nil {
		defer C.lupa_string_free(out)
	}
	if err := fromC(code, &cerr); err != nil {
		return "", err
	}
	return C.GoString(out), nil
}

// APIKeyFromAuthorization takes the key out of an Authorization header
// value ("Bearer <key>", scheme in any case).
func APIKeyFromAuthorization(header string) (string, error) {
	var cs cstrings
	defer cs.free()
	ch, err := cs.add("header", header)
	if err != nil {
		return "", err
	}
	return stringCall(func(o **C.char, e *C.lupa_error) C.lupa_code { return C.lupa_api_key_from_authorization(ch, o, e) })
}

// ProjectFromHost is the project of a Host header under rootDomain.
func ProjectFromHost(host, rootDomain string) (string, error) {
	var cs cstrings
	defer cs.free()
	ch, err := cs.add("host", host)
	if err != nil {
		return "", err
	}
	cr, err := cs.add("rootDomain", rootDomain)
	if err != nil {
		return "", err
	}
	return stringCall(func(o **C.char, e *C.lupa_error) C.lupa_code { return C.lupa_project_from_host(ch, cr, o, e) })
}

// ----- health and maintenance -----------------------------------------------------------

// ComponentHealth is how the store or the cache is doing.
type ComponentHealth struct {
	State  string `json:"state"` // "ok", "disabled" or "unavailable"
	Detail string `json:"detail,omitempty"`
}

// Health is the answer of Health.
type Health struct {
	Store               ComponentHealth `json:"store"`
	Cache               ComponentHealth `json:"cache"`
	Breaker             string          `json:"breaker"` // "closed", "open" or "half_open"
	PendingCacheUpdates *int            `json:"pending_cache_updates"`
}

// Health asks the store and the cache whether they answer.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var out Health
	err := c.callJSON(ctx, &out, func(h *C.lupa_handle, t C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_health(h, t, o, e)
	})
	return out, err
}

// ----- stats -------------------------------------------------------------------------------

// Stats is what a Client has counted since it was opened (lupa_stats in
// lupa.h). Every count only grows: take two snapshots and subtract for a
// rate.
type Stats struct {
	// Resolutions: finished resolutions, by outcome.
	Resolutions ResolutionCounts `json:"resolutions"`
	// Local: the in-process tier's lookups (zero when it is off).
	Local TierCounts `json:"local"`
	// LocalProjects: projects held in process memory now (nil when the
	// in-process tier is off).
	LocalProjects *int `json:"local_projects"`
	// Cache: the shared cache (all zero without one).
	Cache SharedCacheCounts `json:"cache"`
	// Store: the store's operations.
	Store StoreCounts `json:"store"`
	// Latency: how long the resolutions took that process memory could not
	// answer (answered by the shared cache or the store, or failed there),
	// from the in-process miss to the answer. Answers from process memory
	// and malformed requests are counted in Resolutions but not timed.
	Latency LatencyHistogram `json:"latency"`
	// Deployments: successful resolutions per deployment, most resolved
	// first, for a bounded number of deployments.
	Deployments []DeploymentResolutions `json:"deployments"`
	// UntrackedDeploymentResolutions: successful resolutions of
	// deployments beyond those tracked one by one.
	UntrackedDeploymentResolutions uint64 `json:"untracked_deployment_resolutions"`
	// Promotions that changed production (Promote, and a deployment
	// promoted the moment it was ready); no-ops are not counted.
	Promotions uint64 `json:"promotions"`
	// Rollbacks.
	Rollbacks uint64 `json:"rollbacks"`
}

// ResolutionCounts: resolutions answered by each tier, and failures by code.
type ResolutionCounts struct {
	Local uint64 `json:"local"` // answered from process memory
	Cache uint64 `json:"cache"` // answered from the shared cache
	Store uint64 `json:"store"` // answered by the store
	// Errors: failures by code, only codes that occurred, in the order of
	// semantics.md.
	Errors []ErrorCount `json:"errors"`
}

// Total is every finished resolution, answered or failed.
func (r ResolutionCounts) Total() uint64 {
	n := r.Local + r.Cache + r.Store
	for _, e := range r.Errors {
		n += e.Count
	}
	return n
}

// ErrorsWith is how many resolutions failed with code.
func (r ResolutionCounts) ErrorsWith(code Code) uint64 {
	for _, e := range r.Errors {
		if e.Code == code {
			return e.Count
		}
	}
	return 0
}

// ErrorCount is how many resolutions failed with one code.
type ErrorCount struct {
	Code  Code
	Count uint64
}

// coreCodes are the codes a resolution can fail with, by name.
var coreCodes = []Code{
	CodeInvalidArgument, CodeNoProductionDeployment, CodeNoStagingDeployment, CodeDeploymentNotInProject,
	CodeDeploymentNotReady, CodeInvalidAPIKey, CodeProjectNotFound, CodeDeploymentNotFound, CodeProjectExists,
	CodeDeploymentExists, CodeInvalidStatusTransition, CodeProductionConflict, CodeNoRollbackTarget,
	CodeInternal, CodeStorageUnavailable,
}

// UnmarshalJSON reads {"code": "PROJECT_NOT_FOUND", "count": n}.
func (e *ErrorCount) UnmarshalJSON(b []byte) error {
	var raw struct {
		Code  string `json:"code"`
		Count uint64 `json:"count"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, c := range coreCodes {
		if c.String() == raw.Code {
			*e = ErrorCount{Code: c, Count: raw.Count}
			return nil
		}
	}
	return fmt.Errorf("unknown error code %q", raw.Code)
}

// TierCounts: hits and misses of a cache tier.
type TierCounts struct {
	Hits   uint64 `json:"hits"`   // lookups the tier answered
	Misses uint64 `json:"misses"` // lookups it could not answer
}

// SharedCacheCounts: the shared cache, as resolution used it.
type SharedCacheCounts struct {
	Hits   uint64 `json:"hits"`   // lookups that found a usable answer
	Misses uint64 `json:"misses"` // lookups without one (missing, or a value that does not parse)
	// Errors, Timeouts and Skipped count calls of any kind (reads, fills,
	// updates): failed, without an answer within CacheTimeout, and not made
	// because the circuit breaker was open.
	Errors   uint64 `json:"errors"`
	Timeouts uint64 `json:"timeouts"`
	Skipped  uint64 `json:"skipped"`
	// Breaker is the breaker's state now: "closed", "open", "half_open",
	// or "" without a shared cache.
	Breaker string `json:"breaker"`
	// BreakerOpened: how often the breaker opened.
	BreakerOpened uint64 `json:"breaker_opened"`
}

// StoreCounts: the store's operations.
type StoreCounts struct {
	// Queries: operations sent to the store (one statement for a
	// resolution's lookup, one transaction for a change, and those of the
	// background task that applies pending cache updates every
	// OutboxInterval on a Client with a shared cache).
	Queries uint64 `json:"queries"`
	// Unavailable: operations that failed with STORAGE_UNAVAILABLE.
	Unavailable uint64 `json:"unavailable"`
}

// LatencyHistogram: Counts[i] resolutions took at most BoundsUS[i]
// microseconds (and more than the bound before); the last count, one past
// the bounds, is everything slower than the last bound.
type LatencyHistogram struct {
	BoundsUS []uint64 `json:"bounds_us"`
	Counts   []uint64 `json:"counts"`
	// SumNS is the sum of every resolution's duration, in nanoseconds.
	SumNS uint64 `json:"sum_ns"`
}

// Count is how many resolutions the histogram holds.
func (h LatencyHistogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// DeploymentResolutions: successful resolutions of one deployment.
type DeploymentResolutions struct {
	Project     string `json:"project"`
	Deployment  string `json:"deployment"`
	Resolutions uint64 `json:"resolutions"`
}

// Stats is a snapshot of what the Client has counted (all zero when opened
// with Options.NoMetrics). It reads counters in memory and never blocks;
// ctx is only checked before the call, as for every other method.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	err := c.callJSON(ctx, &out, func(h *C.lupa_handle, _ C.uint64_t, o **C.char, e *C.lupa_error) C.lupa_code {
		return C.lupa_stats(h, o, e)
	})
	return out, err
}

// MetricsText is the same snapshot in the Prometheus text exposition
// format (version 0.0.4), every series named lupa_*: what a /metrics
// endpoint answers with (Content-Type "text/plain; version=0.0.4"). It
// never blocks; ctx is only checked before the call.
func (c *Client) MetricsText(ctx context.Context) (string, error) {
	var out *C.char
	err := c.call(ctx, func(h *C.lupa_handle, _ C.uint64_t, e *C.lupa_error) C.lupa_code {
		return C.lupa_metrics_text(h, &out, e)
	})
	if out != nil {
		defer C.lupa_string_free(out)
	}
	if err != nil {
		return "", err
	}
	return C.GoString(out), nil
}

// ApplyPendingCacheUpdates applies pending cache updates now and says how
// many remain.
func (c *Client) ApplyPendingCacheUpdates(ctx context.Context) (int, error) {
	var n C.uint64_t
	err := c.call(ctx, func(h *C.lupa_handle, t C.uint64_t, e *C.lupa_error) C.lupa_code {
		return C.lupa_apply_pending_cache_updates(h, t, &n, e)
	})
	return int(n), err
}

// DropStorage removes what the store holds where that is cheap and safe (a
// private PostgreSQL schema is dropped): for tests.
func (c *Client) DropStorage(ctx context.Context) error {
	return c.call(ctx, func(h *C.lupa_handle, t C.uint64_t, e *C.lupa_error) C.lupa_code {
		return C.lupa_drop_storage(h, t, e)
	})
}

// ClearCache deletes every cache key behind this Client's key prefix (and
// nothing else): for tests. ErrNoCache without a cache.
func (c *Client) ClearCache(ctx context.Context) error {
	return c.call(ctx, func(h *C.lupa_handle, t C.uint64_t, e *C.lupa_error) C.lupa_code {
		return C.lupa_cache_clear(h, t, e)
	})
}
