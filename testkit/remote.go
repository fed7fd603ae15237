package testkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/control/client"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// remoteTimeout bounds each control API call a remote backend makes.
var remoteTimeout = 10 * time.Second

// ConnectOption configures Connect.
type ConnectOption func(*connectConfig)

type connectConfig struct {
	token string
}

// WithToken sets the bearer token for the control API. Without it, Connect
// uses $FAULTLINE_TOKEN.
func WithToken(token string) ConnectOption { return func(c *connectConfig) { c.token = token } }

// Connect returns a Proxy that drives the proxy named proxyName of a running
// faultline binary through its control API at controlURL
// ("http://127.0.0.1:8470"), so that one test body runs against an
// in-process proxy (NewProxy) or the binary alike. Events are streamed over
// the API's websocket from the moment Connect returns. The test does not own
// the remote proxy: Close removes the faults injected through this Proxy and
// stops following events, and leaves the proxy running; if the test failed,
// the Cleanup that closes it saves the events it saw, as NewProxy's does.
// Connect stops the test if the proxy cannot be reached.
func Connect(tb testing.TB, controlURL, proxyName string, opts ...ConnectOption) *Proxy {
	tb.Helper()
	cfg := connectConfig{token: os.Getenv("FAULTLINE_TOKEN")}
	for _, o := range opts {
		o(&cfg)
	}
	// A transport of its own, so that Close can close its idle
	// connections and leave no goroutine behind.
	tr := &http.Transport{}
	c := client.New(controlURL, client.WithToken(cfg.token), client.WithHTTPClient(&http.Client{Transport: tr}))
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
	defer cancel()
	info, err := c.Proxy(ctx, proxyName)
	if err != nil {
		tr.CloseIdleConnections()
		tb.Fatalf("testkit: connect to proxy %q at %s: %v", proxyName, controlURL, err)
		return nil
	}
	if !info.Enabled {
		tr.CloseIdleConnections()
		tb.Fatalf("testkit: proxy %q at %s is disabled", proxyName, controlURL)
		return nil
	}
	sess, err := c.Dial(ctx)
	if err != nil {
		tr.CloseIdleConnections()
		tb.Fatalf("testkit: open the event stream of %s: %v", controlURL, err)
		return nil
	}
	be := &remote{c: c, tr: tr, sess: sess, name: proxyName, listen: info.Listen}
	mode, _ := proxy.ParseMode(info.Mode)
	p := &Proxy{tb: tb, log: newEventLog(), Config: proxy.Config{Upstream: info.Upstream, Mode: mode, Seed: info.Seed}}
	p.log.name = proxyName
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	if err := p.attach(be); err != nil {
		_ = be.close()
		tb.Fatalf("testkit: subscribe to the events of proxy %q: %v", proxyName, err)
		return nil
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("testkit: close remote proxy %q: %v", proxyName, err)
		}
		p.saveArtifacts()
	})
	return p
}

// remote is a backend over a proxy of a faultline binary, through the
// control API: HTTP calls for faults, connections and the pool, a websocket
// subscription for events.
type remote struct {
	c      *client.Client
	tr     *http.Transport // c's, closed with the backend
	sess   *client.Session
	name   string
	listen string

	mu    sync.Mutex // guards added
	added []string   // faults injected through this backend, to remove at close

	wg sync.WaitGroup // the event reader
}

func (r *remote) addr() string { return r.listen }

func (r *remote) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), remoteTimeout)
}

func (r *remote) addFault(f faults.Fault) (faults.Fault, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	nf, err := r.sess.Inject(ctx, r.name, f) // ok comes once it is in force
	if err != nil {
		return f, err
	}
	r.mu.Lock()
	r.added = append(r.added, nf.Name)
	r.mu.Unlock()
	return nf, nil
}

func (r *remote) updateFault(f faults.Fault) (faults.Fault, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	nf, err := r.sess.Update(ctx, r.name, f)
	return nf, remoteErr(err)
}

func (r *remote) removeFault(name string) error {
	ctx, cancel := r.ctx()
	defer cancel()
	err := remoteErr(r.sess.Clear(ctx, r.name, name))
	if err == nil || errors.Is(err, proxy.ErrNoFault) {
		r.forget(name)
	}
	return err
}

func (r *remote) forget(name string) {
	r.mu.Lock()
	r.added = slices.DeleteFunc(r.added, func(n string) bool { return n == name })
	r.mu.Unlock()
}

func (r *remote) clearFaults() error {
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.sess.ClearAll(ctx, r.name); err != nil {
		return err
	}
	r.mu.Lock()
	r.added = nil
	r.mu.Unlock()
	return nil
}

func (r *remote) conns() ([]proxy.ConnInfo, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	cs, err := r.c.Conns(ctx, r.name)
	if err != nil {
		return nil, err
	}
	out := make([]proxy.ConnInfo, len(cs))
	for i, c := range cs {
		out[i] = c.ConnInfo
	}
	return out, nil
}

func (r *remote) pool() (proxy.PoolStats, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	st, err := r.c.Pool(ctx, r.name)
	return st.PoolStats, err
}

// subscribe follows the proxy's events over the websocket from now on. The
// reader goroutine is owned by the returned cancel, which stops it and
// waits for it.
func (r *remote) subscribe(fn func(proxy.Event)) (func(), error) {
	ctx, cancel := r.ctx()
	defer cancel()
	sub, err := r.sess.Subscribe(ctx, r.name, nil, client.FromNow)
	if err != nil {
		return nil, err
	}
	readCtx, stop := context.WithCancel(context.Background())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			e, err := sub.Next(readCtx)
			if err != nil {
				return // stopped, or the session ended
			}
			fn(e.Event)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			r.wg.Wait()
		})
	}, nil
}

// close removes the faults this backend injected and closes the websocket
// session; the remote proxy keeps running.
func (r *remote) close() error {
	r.mu.Lock()
	added := r.added
	r.added = nil
	r.mu.Unlock()
	var errs []error
	for _, name := range added {
		ctx, cancel := r.ctx()
		err := r.c.RemoveFault(ctx, r.name, name)
		cancel()
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove fault %q: %w", name, err))
		}
	}
	if err := r.sess.Close(); err != nil && !errors.Is(err, client.ErrSessionClosed) {
		errs = append(errs, err)
	}
	r.tr.CloseIdleConnections()
	return errors.Join(errs...)
}

// remoteErr maps the API's not-found for a fault operation to
// proxy.ErrNoFault, as the local backend reports it.
func remoteErr(err error) error {
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("%w: %w", proxy.ErrNoFault, err)
	}
	return err
}
