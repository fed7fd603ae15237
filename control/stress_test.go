package control

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
)

// TestConcurrentOps has clients change two proxies (one per mode) at the
// same time, with every kind of change, while connections go through
// them. Every answer must be 2xx or a documented refusal (400, 404, 409),
// never a 5xx or a dropped request; afterwards a reset must leave both
// proxies enabled, with no fault, relaying. The race detector and the
// leak check watch the rest.
func TestConcurrentOps(t *testing.T) {
	fx := newFixture(t, Options{})
	fx.createProxy(t, api.ProxySpec{Name: "d"})
	fx.createProxy(t, api.ProxySpec{Name: "p", Mode: "pool", Pool: api.PoolSpec{Size: 4}})
	names := []string{"d", "p"}

	const workers, opsEach = 6, 150
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ops := []func(r *rand.Rand, name string) (method, path string, body any){
		func(r *rand.Rand, name string) (string, string, any) {
			return "POST", "/api/v1/proxies/" + name + "/faults", randomFault(r)
		},
		func(r *rand.Rand, name string) (string, string, any) {
			f := randomFault(r)
			return "PUT", "/api/v1/proxies/" + name + "/faults/" + f.Name, f
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "DELETE", "/api/v1/proxies/" + name + "/faults/" + randomFault(r).Name, nil
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "DELETE", "/api/v1/proxies/" + name + "/faults", nil
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "PATCH", "/api/v1/proxies/" + name, map[string]any{"enabled": r.IntN(2) == 0}
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "PATCH", "/api/v1/proxies/" + name, map[string]any{"listen": "127.0.0.1:0"}
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "PATCH", "/api/v1/proxies/" + name, map[string]any{"mode": []string{"dial", "pool"}[r.IntN(2)]}
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "POST", "/api/v1/proxies/" + name + "/pool/drain", nil
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "GET", "/api/v1/proxies/" + name + "/conns", nil
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "GET", "/api/v1/proxies", nil
		},
		func(r *rand.Rand, name string) (string, string, any) {
			return "POST", "/api/v1/reset", nil
		},
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	stop := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for range opsEach {
				method, path, body := ops[r.IntN(len(ops))](r, names[r.IntN(len(names))])
				status, b, err := send(fx.ts, nil, method, path, body)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("%s %s: %v", method, path, err)
				case status >= 500 || (status >= 300 && status != 400 && status != 404 && status != 409):
					t.Errorf("%s %s %v: status %d: %s", method, path, body, status, b)
				}
			}
		})
	}
	// Traffic: short echo sessions through whichever proxy is enabled.
	// Faults and restarts break some of them; they must not hang.
	var (
		traffic sync.WaitGroup
		echoed  atomic.Int64
	)
	for i := range 2 {
		traffic.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, p := range fx.srv.Proxies() {
					if p.Enabled {
						if echoTry(p.Listen, fmt.Sprintf("%d-%d", i, n)) {
							echoed.Add(1)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	traffic.Wait()
	t.Logf("answers by status: %v; echo sessions that came through: %d", statuses, echoed.Load())

	if status, b, err := send(fx.ts, nil, "POST", "/api/v1/reset", nil); err != nil || status != http.StatusNoContent {
		t.Fatalf("reset: %d %s %v", status, b, err)
	}
	for _, name := range names {
		var p api.Proxy
		fx.call(t, "GET", "/api/v1/proxies/"+name, nil, http.StatusOK, &p)
		if !p.Enabled || p.Faults != 0 {
			t.Errorf("after reset: %+v, want enabled with no fault", p)
			continue
		}
		echoOnce(t, p.Listen, "after the storm")
	}
}

// randomFault is one of a few named faults, each kind under a fixed name
// so that updates and removals find it sometimes. None of them makes a
// connection wait long.
func randomFault(r *rand.Rand) faults.Fault {
	switch r.IntN(6) {
	case 0:
		return faults.Latency(time.Duration(1+r.IntN(3))*time.Millisecond, 0).WithName("lat")
	case 1:
		return faults.Bandwidth(1 << (10 + r.IntN(10))).WithName("bw")
	case 2:
		return faults.Reset(faults.ToBoth).WithTarget(faults.Target{Which: faults.New, Every: 2}).WithName("rst")
	case 3:
		return faults.Limit(int64(r.IntN(8))).WithName("lim")
	case 4:
		return faults.Stale(faults.StaleEOF).WithName("stale") // refused in dial mode
	default:
		return faults.Corrupt(0.01).WithSeed(1).WithName("bits")
	}
}

// echoTry sends msg through addr and reports whether it came back, giving
// up after a second: a fault or a restart may break the session.
func echoTry(addr, msg string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}
