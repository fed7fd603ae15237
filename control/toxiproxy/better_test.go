package toxiproxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
)

// What toxiproxy gets wrong, and faultline does not.

// A toxic acts on a live connection's next bytes when the call returns
// (toxiproxy #148: some connections are not delayed).
func TestLiveConnectionTakesNewToxic(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	c := dial(t, p.Listen)
	if d := roundTrip(t, c, "fast"); d > 150*time.Millisecond {
		t.Logf("slow machine: a round trip with no toxic took %v", d)
	}
	addToxic(t, p, "latency", "upstream", 1, toxiclient.Attributes{"latency": 300})
	if d := roundTrip(t, c, "slow"); d < 300*time.Millisecond {
		t.Fatalf("live connection: round trip %v right after adding a 300ms latency", d)
	}
}

// Removing a toxic while the client does not read returns promptly, and
// the API keeps answering (toxiproxy #558: DELETE and GET /proxies hang).
func TestRemoveToxicClientNotReading(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, func(c *net.TCPConn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	addToxic(t, p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 100})
	c := dial(t, p.Listen) // never reads
	_ = c
	time.Sleep(500 * time.Millisecond) // the socket buffers fill
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.RemoveToxic("latency_downstream") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("DELETE returned in %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("DELETE of a toxic hung while the client did not read")
		<-done
	}
	if _, err := f.c.Proxies(); err != nil {
		t.Fatal(err)
	}
}

// A client's FIN is relayed as a FIN, and the reply still comes back
// (toxiproxy closes the upstream on the client's FIN; the reply is lost).
func TestHalfCloseRelayed(t *testing.T) {
	for _, withToxic := range []bool{false, true} {
		t.Run(fmt.Sprint("toxic=", withToxic), func(t *testing.T) {
			f := newFixture(t)
			p := newProxy(t, f, func(c *net.TCPConn) {
				req, err := io.ReadAll(c) // to the client's FIN
				if err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
				_, _ = c.Write([]byte("reply to " + string(req)))
			})
			if withToxic {
				addToxic(t, p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 10})
			}
			c := dial(t, p.Listen)
			if _, err := c.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "reply to request" {
				t.Fatalf("after a half-close: %q, %v", got, err)
			}
		})
	}
}

// toxicity draws once per connection and direction from the proxy's
// seeded source: the same seed and calls pick the same connections.
func TestToxicityReplays(t *testing.T) {
	picks := func() []bool {
		f := newFixture(t)
		p := newProxy(t, f, echo)
		addToxic(t, p, "latency", "downstream", 0.5, toxiclient.Attributes{"latency": 1})
		var conns []net.Conn
		for range 16 {
			c := dial(t, p.Listen)
			roundTrip(t, c, "x")
			conns = append(conns, c)
		}
		cs, err := f.cs.Conns(p.Name)
		if err != nil || len(cs) != len(conns) {
			t.Fatalf("conns %v, %v", cs, err)
		}
		var out []bool
		for _, c := range cs {
			out = append(out, slices.Contains(c.Faults, "latency_downstream"))
		}
		return out
	}
	a, b := picks(), picks()
	if !slices.Equal(a, b) {
		t.Fatalf("two runs with the same seed picked\n%v\n%v", a, b)
	}
	if !slices.Contains(a, true) || !slices.Contains(a, false) {
		t.Fatalf("toxicity 0.5 picked %v", a)
	}
}

// A proxy made through either API is seen and driven through both, and
// its events are in the one log.
func TestOneSetOfProxies(t *testing.T) {
	f := newFixture(t)
	up := newServer(t, echo)
	// toxiproxy-made, seen by faultline.
	p, err := f.c.CreateProxy("tp", "127.0.0.1:0", up.addr())
	if err != nil {
		t.Fatal(err)
	}
	addToxic(t, p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 50})
	got, err := f.cs.Proxy("tp")
	if err != nil || got.Listen != p.Listen || got.Faults != 1 {
		t.Fatalf("faultline sees %+v, %v", got, err)
	}
	fs, _ := f.cs.Faults("tp")
	if fs[0].Kind != faults.KindLatency || fs[0].Dir != faults.Down || fs[0].Delay != 50*time.Millisecond {
		t.Fatalf("the toxic as a fault: %+v", fs[0])
	}
	roundTrip(t, dial(t, p.Listen), "x")
	r := f.do(t, "GET", "/api/v1/events?proxy=tp", "")
	var evs api.Events
	if err := json.Unmarshal([]byte(r.body), &evs); err != nil || len(evs.Events) == 0 {
		t.Fatalf("events: %s", r.body)
	}
	kinds := map[string]bool{}
	for _, e := range evs.Events {
		kinds[e.Event.Kind.String()] = true
	}
	if !kinds["accepted"] || !kinds["fault-applied"] {
		t.Fatalf("event kinds %v", kinds)
	}

	// faultline-made, seen and driven by toxiproxy's clients.
	if _, err := f.cs.CreateProxy(api.ProxySpec{Name: "fl", Upstream: up.addr()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cs.AddFault("fl", faults.Bandwidth(5000).WithDir(faults.Up).WithName("slow")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cs.AddFault("fl", faults.Corrupt(0.1).WithName("flip")); err != nil { // no toxic type: not listed
		t.Fatal(err)
	}
	fl, err := f.c.Proxy("fl")
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.ActiveToxics) != 1 || fl.ActiveToxics[0].Name != "slow" || fl.ActiveToxics[0].Type != "bandwidth" ||
		fl.ActiveToxics[0].Stream != "upstream" || fl.ActiveToxics[0].Attributes["rate"] != float64(5) {
		t.Fatalf("toxiproxy sees %+v", fl.ActiveToxics)
	}
	if _, err := fl.UpdateToxic("slow", 1, toxiclient.Attributes{"rate": 0}); err != nil {
		t.Fatal(err)
	}
	fs, _ = f.cs.Faults("fl")
	if len(fs) != 2 || fs[1].Kind != faults.KindStall || fs[1].Dir != faults.Up {
		t.Fatalf("after updating to rate 0: %+v", fs)
	}
	if err := fl.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if err := fl.Disable(); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.cs.Proxy("fl"); got.Enabled {
		t.Fatal("disabled through toxiproxy, enabled for faultline")
	}
	// A fault removed through faultline's API leaves toxiproxy's view.
	if err := f.cs.RemoveFault("tp", fs0Name(t, f, "tp")); err != nil {
		t.Fatal(err)
	}
	if ts, _ := p.Toxics(); len(ts) != 0 {
		t.Fatalf("toxics after the fault was removed: %+v", ts)
	}
	if !strings.Contains(f.do(t, "GET", "/proxies", "").body, `"fl"`) {
		t.Fatal("GET /proxies misses the faultline-made proxy")
	}
}

func fs0Name(t *testing.T, f *fixture, proxy string) string {
	t.Helper()
	fs, err := f.cs.Faults(proxy)
	if err != nil || len(fs) == 0 {
		t.Fatalf("faults of %s: %v, %v", proxy, fs, err)
	}
	return fs[0].Name
}

// A timeout toxic is two faults (a blackhole, and an idle-close after the
// timeout); with a toxicity, both pick the same connections, also when an
// update gives a timeout of 0 one.
func TestTimeoutToxicityOnePick(t *testing.T) {
	t.Run("add", func(t *testing.T) { testTimeoutOnePick(t, false) })
	t.Run("update", func(t *testing.T) { testTimeoutOnePick(t, true) })
}

func testTimeoutOnePick(t *testing.T, update bool) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	var conns []*net.TCPConn
	for range 16 {
		c := dial(t, p.Listen)
		roundTrip(t, c, "x")
		conns = append(conns, c)
	}
	if update {
		addToxic(t, p, "timeout", "downstream", 0.5, toxiclient.Attributes{"timeout": 0})
		if _, err := p.UpdateToxic("timeout_downstream", -1, toxiclient.Attributes{"timeout": 200}); err != nil {
			t.Fatal(err)
		}
	} else {
		addToxic(t, p, "timeout", "downstream", 0.5, toxiclient.Attributes{"timeout": 200})
	}
	fs, _ := f.cs.Faults(p.Name)
	if len(fs) != 2 {
		t.Fatalf("faults %+v", fs)
	}
	cs, err := f.cs.Conns(p.Name)
	if err != nil || len(cs) != len(conns) {
		t.Fatalf("conns %v, %v", cs, err)
	}
	held := map[int]bool{}
	for i, c := range cs {
		held[i] = slices.Contains(c.Faults, fs[0].Name)
	}
	time.Sleep(600 * time.Millisecond)
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		_, werr := c.Write([]byte("y"))
		n, rerr := c.Read(make([]byte, 1))
		switch {
		case held[i] && (werr == nil && (rerr == nil || os.IsTimeout(rerr))):
			t.Errorf("conn %d: held by the timeout toxic, still open after its timeout (read %d, %v)", i, n, rerr)
		case !held[i] && (werr != nil || rerr != nil || n != 1):
			t.Errorf("conn %d: not picked by the toxic, but write %v, read %d, %v", i, werr, n, rerr)
		}
	}
}

// Toxics added, updated and removed from several clients at once while
// bytes flow: every call succeeds, every byte arrives in order, and
// nothing is left behind.
func TestConcurrentToxicChurn(t *testing.T) {
	f := newFixture(t)
	p := newProxy(t, f, echo)
	c := dial(t, p.Listen)
	stop := make(chan struct{})
	streamErr := make(chan error, 1)
	go func() {
		var err error
		defer func() { streamErr <- err }()
		buf := make([]byte, 1024)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := []byte(fmt.Sprintf("%08d", i))
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err = c.Write(msg); err != nil {
				return
			}
			if _, err = io.ReadFull(c, buf[:len(msg)]); err != nil {
				return
			}
			if string(buf[:len(msg)]) != string(msg) {
				err = fmt.Errorf("read %q, want %q", buf[:len(msg)], msg)
				return
			}
		}
	}()
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			name := fmt.Sprint("churn", w)
			for range 25 {
				typ, attrs := "latency", toxiclient.Attributes{"latency": 1}
				if w%2 == 1 {
					typ, attrs = "bandwidth", toxiclient.Attributes{"rate": 1000}
				}
				if _, err := p.AddToxic(name, typ, []string{"upstream", "downstream"}[w%2], 1, attrs); err != nil {
					errs <- err
					return
				}
				if _, err := p.UpdateToxic(name, 0.5, nil); err != nil {
					errs <- err
					return
				}
				if err := p.RemoveToxic(name); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	close(stop)
	if err := <-streamErr; err != nil {
		t.Fatalf("stream: %v", err)
	}
	if ts, err := p.Toxics(); err != nil || len(ts) != 0 {
		t.Fatalf("left: %+v, %v", ts, err)
	}
	if fs, _ := f.cs.Faults(p.Name); len(fs) != 0 {
		t.Fatalf("faults left: %+v", fs)
	}
}
