package testkit

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/internal/echo"
	"github.com/faultline-proxy/faultline/internal/loopback"
	"github.com/faultline-proxy/faultline/proxy"
)

// waitTimeout bounds every wait in these tests; reaching it is a failure.
const waitTimeout = 10 * time.Second

// startEcho starts an echo upstream, closed when the test ends.
func startEcho(t testing.TB) string {
	t.Helper()
	s, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr().String()
}

// dial connects to addr and closes the connection when the test ends.
func dial(t testing.TB, addr string) *net.TCPConn { t.Helper(); return loopback.Dial(t, addr) }

// roundTrip writes msg and reads it back.
func roundTrip(t testing.TB, c net.Conn, msg string) { t.Helper(); loopback.RoundTrip(t, c, msg) }

// recTB is a testing.TB that records Errorf, Fatalf and Logf instead of
// failing the test, to test the testkit's own failure paths. Fatalf ends
// the calling goroutine, as the real one does; run code that may call it
// with capture.
type recTB struct {
	testing.TB // the real test, for Cleanup, Helper, Name, ...

	mu     sync.Mutex // guards errors, fatals, logs
	errors []string
	fatals []string
	logs   []string
}

func newRecTB(t testing.TB) *recTB { return &recTB{TB: t} }

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recTB) recorded() (errors, fatals, logs string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errors, "\n"), strings.Join(r.fatals, "\n"), strings.Join(r.logs, "\n")
}

// capture runs fn on its own goroutine, as a test body, and waits for it to
// return or to end with Fatalf.
func capture(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// ev builds an event for synthetic logs; Seq is set by events.
func ev(kind proxy.EventKind, conn, up uint64) proxy.Event {
	return proxy.Event{Kind: kind, Conn: conn, Upstream: up}
}

// events numbers evs from 1 and gives them times 1 ms apart from start,
// then returns a closed log holding them.
func events(start time.Time, evs ...proxy.Event) *EventLog {
	for i := range evs {
		evs[i].Seq = uint64(i + 1)
		if evs[i].Time.IsZero() {
			evs[i].Time = start.Add(time.Duration(i) * time.Millisecond)
		}
	}
	return NewEventLog(evs...)
}
