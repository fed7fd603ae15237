package testkit

import (
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/control"
	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
)

// sameBody is one test body that must pass against an in-process proxy and
// against a proxy of a control server reached through its API.
func sameBody(t *testing.T, px *Proxy) {
	c := dial(t, px.Addr())
	roundTrip(t, c, "hello")
	acc := px.Await(proxy.EventAccepted)
	if cs := px.Conns(); len(cs) != 1 || cs[0].ID != acc.Conn || cs[0].BytesUp != 5 {
		t.Errorf("Conns() = %+v, want connection %d with 5 bytes up", cs, acc.Conn)
	}
	f := px.Inject(faults.Stall(false).WithDir(faults.Up))
	px.Await(proxy.EventFaultApplied, OnConn(acc.Conn), InDir(proxy.Up))
	if _, err := io.WriteString(c, "held"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); n != 0 || err == nil {
		t.Errorf("read under an up stall: %d bytes, %v; want a timeout", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	if err := f.Clear(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Errorf("after clear: %q, %v; want the held bytes", buf, err)
	}
	_ = c.Close()
	closed := px.Await(proxy.EventClosed, OnConn(acc.Conn))
	if closed.BytesUp != 9 || closed.BytesDown != 9 {
		t.Errorf("closed event %v, want 9 bytes each way", closed)
	}
	if err := CheckNoInvalidReuse(px.Events()); err != nil {
		t.Error(err)
	}
}

func TestConnectRunsTheSameBody(t *testing.T) {
	upstream := startEcho(t)
	t.Run("in-process", func(t *testing.T) {
		sameBody(t, NewProxy(t, upstream))
	})
	t.Run("control API", func(t *testing.T) {
		srv := control.New(control.Options{Token: "tok"})
		ts := httptest.NewServer(srv.Handler())
		defer ts.Close()
		defer srv.Close()
		if _, err := srv.CreateProxy(api.ProxySpec{Name: "remote", Upstream: upstream}); err != nil {
			t.Fatal(err)
		}
		px := Connect(t, ts.URL, "remote", WithToken("tok"))
		sameBody(t, px)
		if err := px.Close(); err != nil {
			t.Fatal(err)
		}
		if got := srv.Proxies(); len(got) != 1 || !got[0].Enabled || got[0].Faults != 0 {
			t.Errorf("after Close the remote proxy is %+v, want it running with no faults left", got)
		}
	})
}

func TestConnectReportsUnknownProxy(t *testing.T) {
	srv := control.New(control.Options{})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Close()
	rec := newRecTB(t)
	capture(func() { Connect(rec, ts.URL, "nope") })
	if _, fatals, _ := rec.recorded(); fatals == "" {
		t.Error("Connect to an unknown proxy did not stop the test")
	}
}
