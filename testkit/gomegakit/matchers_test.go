package gomegakit_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/internal/echo"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
	. "github.com/faultline-proxy/faultline/testkit/gomegakit"
	"github.com/onsi/gomega"
)

// failures is a Gomega whose failures are recorded instead of failing the
// test, to test the matchers' failure messages.
type failures struct {
	mu   sync.Mutex // guards msgs
	msgs []string
}

func (f *failures) gomega() gomega.Gomega {
	return gomega.NewGomega(func(msg string, _ ...int) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.msgs = append(f.msgs, msg)
	})
}

func (f *failures) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n---\n")
}

func echoProxy(t *testing.T, opts ...testkit.Option) *testkit.Proxy {
	t.Helper()
	up, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	return testkit.NewProxy(t, up.Addr().String(), opts...)
}

// echoOnce dials px, sends msg, reads it back and closes.
func echoOnce(t *testing.T, px *testkit.Proxy, msg string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", px.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
}

func TestHaveEventMovesTheCursor(t *testing.T) {
	g := gomega.NewWithT(t)
	px := echoProxy(t)
	echoOnce(t, px, "hi")
	var closed proxy.Event
	g.Eventually(px).WithTimeout(10 * time.Second).Should(HaveEvent(proxy.EventClosed, testkit.OnConn(1)).Into(&closed))
	g.Expect(closed.BytesUp).To(gomega.BeEquivalentTo(2))
	// The accepted event came before the closed one: already read.
	g.Expect(px).NotTo(HaveEvent(proxy.EventAccepted))
	g.Expect(px.Events().Unread()).To(gomega.BeEmpty())
}

func TestHaveEventFailurePrintsTheTail(t *testing.T) {
	px := echoProxy(t)
	echoOnce(t, px, "hi")
	NewWithGomega(gomega.NewWithT(t)).AwaitEvent(px, proxy.EventClosed)
	m := HaveEvent(proxy.EventReset, testkit.By(proxy.Upstream))
	ok, err := m.Match(px)
	if ok || err != nil {
		t.Fatalf("Match = %t, %v; want false, nil", ok, err)
	}
	msg := m.FailureMessage(px)
	for _, want := range []string{"Waiting for event: reset by=upstream", "#1 accepted conn=1", "closed conn=1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message %q does not contain %q", msg, want)
		}
	}
}

func TestHaveEventStopsEventuallyOnceClosed(t *testing.T) {
	px := echoProxy(t)
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	var f failures
	start := time.Now()
	f.gomega().Eventually(px).WithTimeout(time.Minute).Should(HaveEvent(proxy.EventReset))
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Eventually on a closed proxy took %s, want it to stop at once", took)
	}
	if msg := f.text(); !strings.Contains(msg, "the proxy is closed, so none will come") {
		t.Errorf("failure %q does not say the proxy is closed", msg)
	}
}

func TestCheckMatchersQuoteTheEvents(t *testing.T) {
	log := testkit.NewEventLog(
		proxy.Event{Seq: 1, Kind: proxy.EventDialed, Conn: 1, Upstream: 1},
		proxy.Event{Seq: 2, Kind: proxy.EventDiscarded, Conn: 1, Upstream: 1, Reason: proxy.ReasonUnread},
		proxy.Event{Seq: 3, Kind: proxy.EventBorrowed, Conn: 2, Upstream: 1, Reused: true},
		proxy.Event{Seq: 4, Kind: proxy.EventHalfClosed, Conn: 2, Upstream: 1, Dir: proxy.Down, BytesUp: 3},
		proxy.Event{Seq: 5, Kind: proxy.EventClosed, Conn: 2, Upstream: 1, BytesUp: 9, By: proxy.Upstream},
	)
	var f failures
	g := f.gomega()
	g.Expect(log).NotTo(HaveReusedInvalidConnection())
	g.Expect(log).NotTo(HaveWrittenAfterClose())
	g.Expect(log).NotTo(HaveSlowInterrupts(time.Second)) // passes: nothing slow
	msg := f.text()
	for _, want := range []string{
		"show no reuse of an invalid or busy upstream connection",
		"conn 2 borrowed upstream 1 after it was discarded (unread)",
		"#3 borrowed conn=2 upstream=1 reused=true",
		"show no client write after the connection was closed toward it",
		"the client wrote 6 bytes after",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("failures %q do not contain %q", msg, want)
		}
	}
	if n := strings.Count(msg, "---"); n != 1 {
		t.Errorf("got %d failures, want 2:\n%s", n+1, msg)
	}
}

func TestCheckMatchersPassOnACleanRun(t *testing.T) {
	g := gomega.NewWithT(t)
	px := echoProxy(t, testkit.WithPool(proxy.PoolConfig{}))
	kit := NewWithGomega(g)
	echoOnce(t, px, "one")
	kit.AwaitEvent(px, proxy.EventReleased, testkit.OnConn(1)) // else conn 2 may come first and dial
	echoOnce(t, px, "two")
	kit.AwaitEvent(px, proxy.EventBorrowed, testkit.OnConn(2), testkit.IsReused(true))
	kit.ExpectClean(px)
	g.Expect(px).NotTo(HaveSlowInterrupts(time.Second))
	g.Expect(px).To(HaveClientGivenUpWithin(time.Second, time.Second)) // no stall: nothing to give up on
	// In pool mode the write-after-close check cannot judge: the matcher
	// says so instead of passing.
	if _, err := HaveWrittenAfterClose().Match(px); !errors.Is(err, testkit.ErrCannotJudge) {
		t.Errorf("HaveWrittenAfterClose on a pool-mode proxy: got error %v, want ErrCannotJudge", err)
	}
}

func TestMatchersRefuseOtherValues(t *testing.T) {
	for _, m := range []interface {
		Match(any) (bool, error)
	}{HaveEvent(proxy.EventAccepted), HaveReusedInvalidConnection(), HaveOpenConnections()} {
		if _, err := m.Match("a string"); err == nil {
			t.Errorf("%T.Match(string): got nil error, want one", m)
		}
	}
	if _, err := HaveOpenConnections().Match(testkit.NewEventLog()); err == nil {
		t.Error("HaveOpenConnections on an EventLog: got nil error, want one (it needs the Proxy)")
	}
}
