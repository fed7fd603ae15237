package control

import (
	"context"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

// TestEventLogAppendAfterClose: proxies still emit while the server closes;
// appending to a closed log a waiter had watched must not panic.
func TestEventLogAppendAfterClose(t *testing.T) {
	l := newEventLog(4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if l.wait(ctx, 0) {
		t.Fatal("wait on an empty log reported an event")
	}
	l.close()
	l.append("p", proxy.Event{Kind: proxy.EventAccepted})
	l.append("p", proxy.Event{Kind: proxy.EventClosed})
	if l.wait(context.Background(), 0) {
		t.Error("wait on a closed log reported events to read")
	}
	evs, next, err := l.read(0, 10, filter{})
	if err != nil || len(evs) != 2 || next != 2 {
		t.Errorf("read after close = %d events, next %d, %v; want 2, 2", len(evs), next, err)
	}
}
