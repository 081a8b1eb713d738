package lupa_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lupa "github.com/lupa-build/lupa-core/bindings-c/go"
)

type backend struct {
	name, store, cache string
	postgres           bool
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func reachable(raw string, port string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// backends: memory+memory always; postgres+redis when the services answer
// (under CI=true they must).
func backends(t *testing.T) []backend {
	out := []backend{{name: "memory+memory", store: "memory://", cache: "memory://"}}
	db := env("LUPA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
	redis := env("LUPA_TEST_REDIS_URL", "redis://127.0.0.1:6379")
	if reachable(db, "5432") && reachable(redis, "6379") {
		out = append(out, backend{name: "postgres+redis", store: db, cache: redis, postgres: true})
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL or Redis is not reachable and CI=true: a missing service fails the run")
	} else {
		t.Logf("SKIPPED postgres+redis: not reachable")
	}
	return out
}

var seq int64

func open(t *testing.T, b backend) *lupa.Client {
	t.Helper()
	tag := fmt.Sprintf("%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, atomic.AddInt64(&seq, 1))
	opts := &lupa.Options{KeyPrefix: "lupa-go-" + tag + ":", CacheTimeout: 2 * time.Second}
	if b.postgres {
		opts.Schema = "lupa_go_" + tag
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := lupa.Open(ctx, b.store, b.cache, opts)
	if err != nil {
		t.Fatalf("open %s: %v", b.name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.ClearCache(ctx)
		_ = c.DropStorage(ctx)
		_ = c.Close()
	})
	return c
}

// must returns v, or fails the test (by panicking: Go 1.19 cannot pass a
// *testing.T beside a multi-valued call).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ready(t *testing.T, c *lupa.Client, project, id string) {
	t.Helper()
	ctx := context.Background()
	must(c.CreateDeployment(ctx, lupa.NewDeployment{Project: project, ID: id, Snapshot: "snp_" + id}))
	must(c.SetStatus(ctx, id, "ready", ""))
}

func TestVersion(t *testing.T) {
	if lupa.Version() != lupa.HeaderVersion {
		t.Fatalf("library %s, header %s", lupa.Version(), lupa.HeaderVersion)
	}
}

func TestScenario(t *testing.T) {
	for _, b := range backends(t) {
		b := b
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := open(t, b)
			p := must(c.CreateProject(ctx, lupa.NewProject{ID: "proj_go", OrgID: "org_1", Name: "Docs"}))
			if p.ID != "proj_go" || p.CreatedAt.IsZero() || p.CreatedAt.Location() != time.UTC {
				t.Fatalf("project %+v", p)
			}
			_, err := c.CreateProject(ctx, lupa.NewProject{ID: "proj_go", OrgID: "org_1", Name: "Docs"})
			if !errors.Is(err, lupa.ErrProjectExists) {
				t.Fatalf("want ErrProjectExists, got %v", err)
			}
			live := lupa.ResolveRequest{Project: "proj_go", APIKeyEnvironment: "live"}
			_, err = c.Resolve(ctx, live)
			if !errors.Is(err, lupa.ErrNoProductionDeployment) {
				t.Fatalf("want ErrNoProductionDeployment, got %v", err)
			}
			var le *lupa.Error
			if !errors.As(err, &le) || le.HTTPStatus != 400 || le.Code != lupa.CodeNoProductionDeployment {
				t.Fatalf("error details: %#v", err)
			}
			if le.HTTPBody() != `{"error":{"code":"NO_PRODUCTION_DEPLOYMENT","message":"No production deployment found. Please specify Deployment-Id header."}}` {
				t.Fatalf("http body %s", le.HTTPBody())
			}

			ready(t, c, "proj_go", "dep_a")
			d := must(c.CreateDeployment(ctx, lupa.NewDeployment{Project: "proj_go", ID: "dep_b", Snapshot: "s", CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}))
			if d.Deployment.Status != "processing" || d.Deployment.Environment != "staging" || d.CachePending {
				t.Fatalf("created %+v", d)
			}
			_, err = c.Promote(ctx, "proj_go", "dep_b")
			if !errors.Is(err, lupa.ErrDeploymentNotReady) {
				t.Fatalf("want ErrDeploymentNotReady, got %v", err)
			}
			pr := must(c.Promote(ctx, "proj_go", "dep_a"))
			if pr.Deployment.ID != "dep_a" || pr.Deployment.Environment != "production" {
				t.Fatalf("promotion %+v", pr)
			}
			r := must(c.Resolve(ctx, live))
			if r.DeploymentID != "dep_a" {
				t.Fatalf("resolved %+v", r)
			}
			r = must(c.Resolve(ctx, lupa.ResolveRequest{Project: "proj_go", APIKey: "lupa_sk_live_abc"}))
			if r.DeploymentID != "dep_a" {
				t.Fatalf("resolved %+v", r)
			}
			_, err = c.Resolve(ctx, lupa.ResolveRequest{Project: "bad id", APIKey: "nonsense"})
			if !errors.Is(err, lupa.ErrInvalidAPIKey) || !strings.Contains(err.Error(), "INVALID_API_KEY") {
				t.Fatalf("want ErrInvalidAPIKey, got %v", err)
			}
			_, err = c.Resolve(ctx, lupa.ResolveRequest{Project: "nope", Internal: true})
			if !errors.Is(err, lupa.ErrProjectNotFound) {
				t.Fatalf("want ErrProjectNotFound, got %v", err)
			}
			_, err = c.Resolve(ctx, lupa.ResolveRequest{Project: "proj_go", DeploymentID: "dep_b", Internal: true})
			if !errors.Is(err, lupa.ErrDeploymentNotReady) {
				t.Fatalf("want ErrDeploymentNotReady, got %v", err)
			}
			r = must(c.Resolve(ctx, lupa.ResolveRequest{Project: "proj_go", Internal: true, DeploymentOptional: true}))
			if r.DeploymentID != "" {
				t.Fatalf("resolved %+v", r)
			}
			_, err = c.Resolve(ctx, lupa.ResolveRequest{Project: "proj\x00go", Internal: true})
			if !errors.Is(err, lupa.ErrInvalidArgument) {
				t.Fatalf("a NUL byte: want ErrInvalidArgument, got %v", err)
			}

			ready(t, c, "proj_go", "dep_c")
			_, err = c.SetEnvironment(ctx, "proj_go", "dep_c", "production")
			if !errors.Is(err, lupa.ErrProductionConflict) {
				t.Fatalf("want ErrProductionConflict, got %v", err)
			}
			pr = must(c.Promote(ctx, "proj_go", "dep_c"))
			if pr.Demoted != "dep_a" {
				t.Fatalf("promotion %+v", pr)
			}
			pr = must(c.Rollback(ctx, "proj_go"))
			if pr.Deployment.ID != "dep_a" {
				t.Fatalf("rollback %+v", pr)
			}
			h := must(c.History(ctx, "proj_go", 0, ""))
			if len(h.Items) < 3 || h.Items[0].DeploymentID == "" {
				t.Fatalf("history %+v", h)
			}
			page := must(c.ListDeployments(ctx, "proj_go", 2, ""))
			if len(page.Items) != 2 || page.NextCursor == "" {
				t.Fatalf("page %+v", page)
			}
			rest := must(c.ListDeployments(ctx, "proj_go", 2, page.NextCursor))
			if len(rest.Items) != 1 || rest.Items[0].ID != "dep_b" {
				t.Fatalf("page %+v", rest)
			}
			got := must(c.GetDeployment(ctx, "dep_a"))
			if got.ProjectID != "proj_go" || got.Environment != "production" {
				t.Fatalf("deployment %+v", got)
			}
			must(c.DeleteDeployment(ctx, "proj_go", "dep_a"))
			_, err = c.GetDeployment(ctx, "dep_a")
			if !errors.Is(err, lupa.ErrDeploymentNotFound) {
				t.Fatalf("want ErrDeploymentNotFound, got %v", err)
			}
			health := must(c.Health(ctx))
			if health.Store.State != "ok" || health.Cache.State != "ok" {
				t.Fatalf("health %+v", health)
			}
			if n := must(c.ApplyPendingCacheUpdates(ctx)); n != 0 {
				t.Fatalf("pending %d", n)
			}
			projects := must(c.ListProjects(ctx, 0, ""))
			if len(projects.Items) != 1 {
				t.Fatalf("projects %+v", projects)
			}
			if pending := must(c.DeleteProject(ctx, "proj_go")); pending {
				t.Fatal("cache pending")
			}
			_, err = c.GetProject(ctx, "proj_go")
			if !errors.Is(err, lupa.ErrProjectNotFound) {
				t.Fatalf("want ErrProjectNotFound, got %v", err)
			}
		})
	}
}

func TestHelpersWithoutHandle(t *testing.T) {
	info := must(lupa.ParseAPIKey("lupa_pk_test_abc"))
	if info.Type != "pk" || info.Environment != "test" {
		t.Fatalf("%+v", info)
	}
	if _, err := lupa.ParseAPIKey("lupa_sk_live_abc\n"); !errors.Is(err, lupa.ErrInvalidAPIKey) {
		t.Fatalf("want ErrInvalidAPIKey, got %v", err)
	}
	if k := must(lupa.APIKeyFromAuthorization("Bearer lupa_sk_live_x")); k != "lupa_sk_live_x" {
		t.Fatal(k)
	}
	if p := must(lupa.ProjectFromHost("abc1234567.lupa.build", "lupa.build")); p != "abc1234567" {
		t.Fatal(p)
	}
	if _, err := lupa.ProjectFromHost("lupa.build", "lupa.build"); !errors.Is(err, lupa.ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}
	if lupa.CodeProjectNotFound.String() != "PROJECT_NOT_FOUND" || lupa.CodeProjectNotFound.HTTPStatus() != 404 {
		t.Fatal("code names")
	}
}

// A listener that accepts connections and never answers.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func TestDeadlines(t *testing.T) {
	// A deadline that has passed: no call is made.
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	_, err := lupa.Open(ctx, "memory://", "memory://", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, lupa.ErrTimeout) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	// A cancelled context (no deadline) is reported as such.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := lupa.Open(cctx, "memory://", "memory://", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("want Canceled, got %v", err)
	}

	// A store that never answers: the deadline becomes the call's timeout.
	addr := silentServer(t)
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = lupa.Open(ctx, "postgres://postgres@"+addr+"/postgres", "none", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, lupa.ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("the deadline was not honoured: %v", elapsed)
	}
	var le *lupa.Error
	if !errors.As(err, &le) || le.HTTPStatus != 504 {
		t.Fatalf("%#v", err)
	}

	// A call on an open handle with a deadline in the past.
	c := open(t, backend{name: "memory+memory", store: "memory://", cache: "memory://"})
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	if _, err := c.Resolve(ctx, lupa.ResolveRequest{Project: "p", Internal: true}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	// A generous deadline works.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Resolve(ctx, lupa.ResolveRequest{Project: "p", Internal: true}); !errors.Is(err, lupa.ErrProjectNotFound) {
		t.Fatalf("want ErrProjectNotFound, got %v", err)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	c := must(lupa.Open(ctx, "memory://", "memory://", nil))
	must(c.CreateProject(ctx, lupa.NewProject{ID: "p1", OrgID: "o", Name: "n"}))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("a second Close is harmless", err)
	}
	if _, err := c.GetProject(ctx, "p1"); !errors.Is(err, lupa.ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}

	// Closing while goroutines resolve: each call ends with an answer or ErrClosed.
	c = must(lupa.Open(ctx, "memory://", "memory://", nil))
	must(c.CreateProject(ctx, lupa.NewProject{ID: "p1", OrgID: "o", Name: "n"}))
	ready(t, c, "p1", "d1")
	must(c.Promote(ctx, "p1", "d1"))
	var wg sync.WaitGroup
	var bad int64
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := c.Resolve(ctx, lupa.ResolveRequest{Project: "p1", APIKeyEnvironment: "live"})
				if errors.Is(err, lupa.ErrClosed) {
					return
				}
				if err != nil || r.DeploymentID != "d1" {
					atomic.AddInt64(&bad, 1)
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if bad != 0 {
		t.Fatalf("%d goroutines saw a wrong answer", bad)
	}
}

// 64 goroutines resolve while another promotes: every answer is one of the
// two valid deployments and, once the promotion has returned, only the new
// one.
func TestResolveDuringPromote(t *testing.T) {
	for _, b := range backends(t) {
		b := b
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := open(t, b)
			must(c.CreateProject(ctx, lupa.NewProject{ID: "proj_race", OrgID: "o", Name: "Race"}))
			ready(t, c, "proj_race", "dep_old")
			ready(t, c, "proj_race", "dep_new")
			must(c.Promote(ctx, "proj_race", "dep_old"))

			var promoted atomic.Bool
			var wg sync.WaitGroup
			var mu sync.Mutex
			var problems []string
			var before, after int64
			fail := func(format string, args ...interface{}) {
				mu.Lock()
				defer mu.Unlock()
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf(format, args...))
				}
			}
			stop := make(chan struct{})
			for i := 0; i < 64; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					req := lupa.ResolveRequest{Project: "proj_race", APIKeyEnvironment: "live"}
					if i%2 == 1 {
						req = lupa.ResolveRequest{Project: "proj_race", APIKey: "lupa_sk_live_race"}
					}
					for n := 0; ; n++ {
						done := promoted.Load() // read before the call starts
						cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						r, err := c.Resolve(cctx, req)
						cancel()
						switch {
						case err != nil:
							fail("goroutine %d: %v", i, err)
							return
						case done && r.DeploymentID != "dep_new":
							fail("goroutine %d: %s after the promotion returned", i, r.DeploymentID)
							return
						case r.DeploymentID != "dep_old" && r.DeploymentID != "dep_new":
							fail("goroutine %d: %q is neither deployment", i, r.DeploymentID)
							return
						}
						if done {
							atomic.AddInt64(&after, 1)
						} else {
							atomic.AddInt64(&before, 1)
						}
						select {
						case <-stop:
							if done && n > 0 {
								return
							}
						default:
						}
					}
				}(i)
			}
			time.Sleep(200 * time.Millisecond)
			pr := must(c.Promote(ctx, "proj_race", "dep_new"))
			promoted.Store(true)
			if pr.Demoted != "dep_old" || pr.CachePending {
				t.Errorf("promotion %+v", pr)
			}
			time.Sleep(300 * time.Millisecond)
			close(stop)
			wg.Wait()
			for _, p := range problems {
				t.Error(p)
			}
			if before == 0 || after == 0 {
				t.Fatalf("resolutions before the promotion %d, after %d: both must happen", before, after)
			}
			t.Logf("%s: %d resolutions before the promotion returned, %d after", b.name, before, after)
		})
	}
}

func TestNoCache(t *testing.T) {
	ctx := context.Background()
	c := must(lupa.Open(ctx, "sqlite::memory:", "none", &lupa.Options{CallTimeout: 10 * time.Second}))
	defer c.Close()
	if err := c.ClearCache(ctx); !errors.Is(err, lupa.ErrNoCache) {
		t.Fatalf("want ErrNoCache, got %v", err)
	}
	h := must(c.Health(ctx))
	if h.Cache.State != "disabled" || h.Store.State != "ok" {
		t.Fatalf("health %+v", h)
	}
	if _, err := lupa.Open(ctx, "memory://", "memory://", &lupa.Options{Schema: "Not-Valid"}); !errors.Is(err, lupa.ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}
	if _, err := lupa.Open(ctx, "memory://", "memory://", &lupa.Options{CallTimeout: -time.Second}); !errors.Is(err, lupa.ErrInvalidArgument) {
		t.Fatalf("want ErrInvalidArgument, got %v", err)
	}
}

// freezableProxy forwards TCP to target until frozen; then it stops passing
// bytes, so the server looks hung to the library.
type freezableProxy struct {
	addr   string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *freezableProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezableProxy{addr: l.Addr().String()}
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			for p.frozen.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.frozen.Store(false)
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// A context deadline bounds a call on an open handle whose store stops
// answering (the store's own timeout is much longer).
func TestCallDeadlineOnAHungStore(t *testing.T) {
	var pg *backend
	for _, b := range backends(t) {
		if b.postgres {
			b := b
			pg = &b
		}
	}
	if pg == nil {
		t.Skip("no PostgreSQL")
	}
	u, err := url.Parse(pg.store)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	proxy := newProxy(t, target)
	u.Host = proxy.addr
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	c := open(t, backend{name: "postgres(proxied)+none", store: u.String(), cache: "none", postgres: true})
	ctx := context.Background()
	must(c.CreateProject(ctx, lupa.NewProject{ID: "proj_hang", OrgID: "o", Name: "n"}))

	proxy.frozen.Store(true)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.GetProject(dctx, "proj_hang")
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, lupa.ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("the call took %v for a 300 ms deadline", elapsed)
	}
	proxy.frozen.Store(false)
	// The handle still works once the store answers again.
	if _, err := c.GetProject(ctx, "proj_hang"); err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
}

// The counters move as a scripted sequence predicts, and the Prometheus
// text says the same.
func TestStats(t *testing.T) {
	for _, b := range backends(t) {
		b := b
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := open(t, b)
			must(c.CreateProject(ctx, lupa.NewProject{ID: "proj_s", OrgID: "org_1", Name: "Stats"}))
			must(c.CreateDeployment(ctx, lupa.NewDeployment{Project: "proj_s", ID: "dep_s", Snapshot: "snp_s", Environment: "production"}))
			must(c.SetStatus(ctx, "dep_s", "ready", ""))
			before := must(c.Stats(ctx))
			if before.Promotions != 1 || before.Resolutions.Total() != 0 {
				t.Fatalf("before any resolve: %+v", before)
			}

			live := lupa.ResolveRequest{Project: "proj_s", APIKeyEnvironment: "live"}
			if r := must(c.Resolve(ctx, live)); r.Source != "store" {
				t.Fatalf("first resolve from %s", r.Source)
			}
			if r := must(c.Resolve(ctx, live)); r.Source != "local" {
				t.Fatalf("second resolve from %s", r.Source)
			}
			if _, err := c.Resolve(ctx, lupa.ResolveRequest{Project: "proj_none", APIKeyEnvironment: "live"}); !errors.Is(err, lupa.ErrProjectNotFound) {
				t.Fatalf("want ErrProjectNotFound, got %v", err)
			}
			if _, err := c.Resolve(ctx, lupa.ResolveRequest{Project: "proj_s", APIKey: "lupa_bad"}); !errors.Is(err, lupa.ErrInvalidAPIKey) {
				t.Fatalf("want ErrInvalidAPIKey, got %v", err)
			}

			s := must(c.Stats(ctx))
			r := s.Resolutions
			if r.Local != 1 || r.Cache != 0 || r.Store != 1 || r.Total() != 4 {
				t.Fatalf("resolutions %+v", r)
			}
			if r.ErrorsWith(lupa.CodeProjectNotFound) != 1 || r.ErrorsWith(lupa.CodeInvalidAPIKey) != 1 || len(r.Errors) != 2 {
				t.Fatalf("errors %+v", r.Errors)
			}
			if r.Errors[0].Code != lupa.CodeInvalidAPIKey {
				t.Fatalf("errors in the order of semantics.md: %+v", r.Errors)
			}
			if s.Local.Hits != 1 || s.Local.Misses != 2 || s.LocalProjects == nil {
				t.Fatalf("local %+v, %v", s.Local, s.LocalProjects)
			}
			if s.Cache.Hits != 0 || s.Cache.Misses != 2 || s.Cache.Breaker != "closed" || s.Cache.Errors+s.Cache.Timeouts+s.Cache.Skipped != 0 {
				t.Fatalf("cache %+v", s.Cache)
			}
			// The two lookups reached the store; so may the background task
			// that applies pending cache updates, on its own schedule.
			if s.Store.Queries < before.Store.Queries+2 || s.Store.Unavailable != 0 {
				t.Fatalf("store %+v, before %+v", s.Store, before.Store)
			}
			// Timed: the two resolutions that went past process memory.
			if s.Latency.Count() != 2 || len(s.Latency.Counts) != len(s.Latency.BoundsUS)+1 || s.Latency.SumNS == 0 {
				t.Fatalf("latency %+v", s.Latency)
			}
			want := []lupa.DeploymentResolutions{{Project: "proj_s", Deployment: "dep_s", Resolutions: 2}}
			if len(s.Deployments) != 1 || s.Deployments[0] != want[0] || s.UntrackedDeploymentResolutions != 0 {
				t.Fatalf("deployments %+v", s.Deployments)
			}
			if s.Promotions != 1 || s.Rollbacks != 0 {
				t.Fatalf("changes %d %d", s.Promotions, s.Rollbacks)
			}

			text := must(c.MetricsText(ctx))
			samples := parsePrometheus(t, text)
			for series, want := range map[string]float64{
				`lupa_resolutions_total{source="local"}`:                                 float64(r.Local),
				`lupa_resolutions_total{source="store"}`:                                 float64(r.Store),
				`lupa_resolution_errors_total{code="PROJECT_NOT_FOUND"}`:                 1,
				`lupa_resolution_errors_total{code="INVALID_API_KEY"}`:                   1,
				`lupa_cache_hits_total{tier="local"}`:                                    float64(s.Local.Hits),
				`lupa_cache_misses_total{tier="shared"}`:                                 float64(s.Cache.Misses),
				`lupa_cache_breaker_state{state="closed"}`:                               1,
				`lupa_resolve_duration_seconds_bucket{le="+Inf"}`:                        float64(s.Latency.Count()),
				`lupa_resolve_duration_seconds_count`:                                    float64(s.Latency.Count()),
				`lupa_deployment_resolutions_total{project="proj_s",deployment="dep_s"}`: 2,
				`lupa_promotions_total`:                                                  1,
				`lupa_rollbacks_total`:                                                   0,
			} {
				got, ok := samples[series]
				if !ok || got != want {
					t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
				}
			}
			if samples["lupa_store_queries_total"] < float64(s.Store.Queries) {
				t.Errorf("lupa_store_queries_total %v, below the earlier snapshot's %d", samples["lupa_store_queries_total"], s.Store.Queries)
			}
			if t.Failed() {
				t.Log(text)
			}
		})
	}
}

// parsePrometheus checks the text exposition format line by line (HELP and
// TYPE before a family's samples, `name{labels} value`) and returns every
// sample by its series.
func parsePrometheus(t *testing.T, text string) map[string]float64 {
	t.Helper()
	types := map[string]string{}
	samples := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			parts := strings.Fields(line)
			if len(parts) != 4 {
				t.Fatalf("bad TYPE line %q", line)
			}
			types[parts[2]] = parts[3]
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("not `series value`: %q", line)
		}
		series, value := line[:i], line[i+1:]
		var v float64
		if _, err := fmt.Sscan(value, &v); err != nil {
			t.Fatalf("not a number in %q", line)
		}
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
			if !strings.HasSuffix(series, "}") {
				t.Fatalf("labels not closed in %q", line)
			}
		}
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f := strings.TrimSuffix(name, suffix); f != name && types[f] == "histogram" {
				family = f
			}
		}
		if _, ok := types[family]; !ok || !strings.HasPrefix(name, "lupa_") {
			t.Fatalf("sample before its TYPE: %q", line)
		}
		if _, dup := samples[series]; dup {
			t.Fatalf("series twice: %q", series)
		}
		samples[series] = v
	}
	return samples
}

func TestStatsWithoutMetricsAndAfterClose(t *testing.T) {
	ctx := context.Background()
	c := must(lupa.Open(ctx, "memory://", "memory://", &lupa.Options{NoMetrics: true}))
	must(c.CreateProject(ctx, lupa.NewProject{ID: "p1", OrgID: "o", Name: "n"}))
	ready(t, c, "p1", "d1")
	must(c.Promote(ctx, "p1", "d1"))
	must(c.Resolve(ctx, lupa.ResolveRequest{Project: "p1", APIKeyEnvironment: "live"}))
	s := must(c.Stats(ctx))
	if s.Resolutions.Total() != 0 || s.Promotions != 0 || s.Store.Queries != 0 || s.Latency.Count() != 0 {
		t.Fatalf("metrics off counted %+v", s)
	}
	if s.LocalProjects == nil || *s.LocalProjects != 1 {
		t.Fatalf("gauges still read the live state: %v", s.LocalProjects)
	}
	if !strings.Contains(must(c.MetricsText(ctx)), "\nlupa_resolutions_total{source=\"store\"} 0\n") {
		t.Fatal("metrics text without counts")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Stats(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("want Canceled, got %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stats(ctx); !errors.Is(err, lupa.ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
	if _, err := c.MetricsText(ctx); !errors.Is(err, lupa.ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
}
