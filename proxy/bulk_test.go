package proxy

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// bulkSize is how many bytes each side sends in the bulk tests: enough to
// cycle every buffer on the path (socket buffers, splice pipes) thousands
// of times.
const bulkSize = 256 << 20

// bulkTimeout bounds a whole bulk transfer. It is generous: a transfer that
// reaches it is stuck, not slow.
const bulkTimeout = 2 * time.Minute

// Seeds of the two pseudo-random streams; they differ so that a proxy that
// crossed or echoed the streams would be caught.
var (
	clientSeed   = [32]byte{'c', 'l', 'i', 'e', 'n', 't'}
	upstreamSeed = [32]byte{'u', 'p', 's', 't', 'r', 'e', 'a', 'm'}
)

// digest is what one end knows of a stream it sent or received.
type digest struct {
	n   int64
	sum [sha256.Size]byte
}

func (d digest) String() string { return fmt.Sprintf("%d bytes sha256 %x", d.n, d.sum[:8]) }

// sendStream writes n pseudo-random bytes drawn from seed to w.
func sendStream(w io.Writer, seed [32]byte, n int64) (digest, error) {
	src := rand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var sent int64
	for sent < n {
		b := buf[:min(n-sent, int64(len(buf)))]
		_, _ = src.Read(b)
		h.Write(b)
		m, err := w.Write(b)
		sent += int64(m)
		if err != nil {
			return digest{n: sent}, err
		}
	}
	return digest{n: sent, sum: [sha256.Size]byte(h.Sum(nil))}, nil
}

// recvStream reads r to EOF, or exactly n bytes when n >= 0.
func recvStream(r io.Reader, n int64) (digest, error) {
	h := sha256.New()
	var got int64
	var err error
	if n < 0 {
		got, err = io.Copy(h, r)
	} else {
		got, err = io.CopyN(h, r, n)
	}
	return digest{n: got, sum: [sha256.Size]byte(h.Sum(nil))}, err
}

// bulkEnd is what one end of a bulk transfer sent and received.
type bulkEnd struct {
	sent, got        digest
	sendErr, recvErr error
	closeWriteErr    error
}

func (e bulkEnd) err() error {
	switch {
	case e.sendErr != nil:
		return fmt.Errorf("send: %w", e.sendErr)
	case e.closeWriteErr != nil:
		return fmt.Errorf("CloseWrite: %w", e.closeWriteErr)
	case e.recvErr != nil:
		return fmt.Errorf("receive: %w", e.recvErr)
	}
	return nil
}

// exchange sends seed's stream on c while it receives the other side's,
// both at once. With halfClose it half-closes c after sending and reads to
// EOF; without, it reads exactly bulkSize bytes and leaves c open.
func exchange(c *net.TCPConn, seed [32]byte, halfClose bool) bulkEnd {
	_ = c.SetDeadline(time.Now().Add(bulkTimeout))
	defer c.SetDeadline(time.Time{})
	var e bulkEnd
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		e.sent, e.sendErr = sendStream(c, seed, bulkSize)
		if halfClose && e.sendErr == nil {
			e.closeWriteErr = c.CloseWrite()
		}
	}()
	want := int64(bulkSize)
	if halfClose {
		want = -1
	}
	e.got, e.recvErr = recvStream(c, want)
	if e.recvErr != nil {
		_ = c.SetWriteDeadline(time.Unix(1, 0)) // do not wait for bulkTimeout
	}
	<-sent
	return e
}

// TestBulkBothWays moves bulkSize bytes each way at once through the proxy
// and checks that both streams arrive byte for byte, and that the closed
// event counts them.
func TestBulkBothWays(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		// halfClose: each end half-closes after sending and reads to EOF.
		// Without it the client reads the whole upstream stream and then
		// closes, which in pool mode ends the session (a client FIN is not
		// relayed in pool mode); the upstream never closes.
		halfClose bool
		// judged: the upstream connection must go back to the pool, since
		// everything sent was delivered and nothing is left unread, unless
		// the last bytes up began after the last bytes down: two streams
		// at once look to TCP like a request whose reply may still come,
		// and such a connection is discarded (reply-pending), never reused.
		judged bool
	}{
		{name: "dial", mode: ModeDial, halfClose: true},
		{name: "pool", mode: ModePool, judged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upDone := make(chan bulkEnd, 1)
			up := startServer(t, func(c *net.TCPConn) {
				upDone <- exchange(c, upstreamSeed, tt.halfClose)
			})
			p := startProxy(t, Config{Upstream: up.addr(), Mode: tt.mode})
			ev := record(t, p)

			c := dial(t, p.Addr().String())
			start := time.Now()
			client := exchange(c, clientSeed, tt.halfClose)
			var upstream bulkEnd
			select {
			case upstream = <-upDone:
			case <-time.After(bulkTimeout):
				t.Fatalf("upstream did not finish in %s", bulkTimeout)
			}
			_ = c.Close()
			t.Logf("%s: %d MiB each way in %s", tt.name, bulkSize>>20, time.Since(start).Round(time.Millisecond))

			if err := client.err(); err != nil {
				t.Errorf("client: %v", err)
			}
			if err := upstream.err(); err != nil {
				t.Errorf("upstream: %v", err)
			}
			if client.sent.n != bulkSize || upstream.sent.n != bulkSize {
				t.Fatalf("sent: client %d, upstream %d bytes; want %d each", client.sent.n, upstream.sent.n, bulkSize)
			}
			if upstream.got != client.sent {
				t.Errorf("upstream got %s, want %s (what the client sent)", upstream.got, client.sent)
			}
			if client.got != upstream.sent {
				t.Errorf("client got %s, want %s (what the upstream sent)", client.got, upstream.sent)
			}

			cl := ev.waitKind(t, EventClosed, 0)
			if cl.BytesUp != bulkSize || cl.BytesDown != bulkSize || cl.How != FIN {
				t.Errorf("closed event: got bytes_up=%dB bytes_down=%dB how=%s, want %dB each way, how=FIN; events:\n%s", cl.BytesUp, cl.BytesDown, cl.How, bulkSize, ev)
			}
			if tt.judged {
				end := ev.waitFor(t, "released or discarded", func(e Event) bool {
					return e.Conn == cl.Conn && (e.Kind == EventReleased || e.Kind == EventDiscarded)
				})
				if end.Upstream != cl.Upstream || (end.Kind == EventDiscarded && end.Reason != ReasonReplyPending) {
					t.Errorf("upstream connection ended %s; want upstream %d released, or discarded as %s", end, cl.Upstream, ReasonReplyPending)
				}
			}
		})
	}
}
