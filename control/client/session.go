package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
)

var (
	// ErrSessionClosed is returned by a Session's methods, and by
	// Subscription.Next, once the session has ended: by Close, or because
	// the connection failed or the server closed it (then the error also
	// wraps the cause, such as a *websocket.CloseError with the server's
	// reason).
	ErrSessionClosed = errors.New("client: websocket session closed")
	// ErrUnsubscribed is returned by Subscription.Next once the events
	// queued before Unsubscribe are read.
	ErrUnsubscribed = errors.New("client: unsubscribed")
	// ErrOverflow is returned by Subscription.Next once the events queued
	// before it are read, when MaxQueued events (or the bound given with
	// WithMaxQueued) were waiting unread: the
	// subscription is ended. Subscribe again with after set to the ID of
	// the last event read to go on without a gap.
	ErrOverflow = errors.New("client: subscription queue overflowed")
)

// MaxQueued is the most events a Subscription holds unread before it is
// ended with ErrOverflow.
const MaxQueued = 1 << 16

const (
	writeWait     = 10 * time.Second // bound on one websocket write
	handshakeWait = 10 * time.Second // bound on the websocket handshake
	closeGrace    = 2 * time.Second  // how long Close waits for the server's close frame
	maxMessage    = 16 << 20         // the largest message read from the server
)

// Session is a websocket connection to the control server: requests
// (Inject, Update, Clear, ClearAll, Subscribe) each wait for their reply,
// and subscribed events are queued for Subscription.Next. It is safe for
// concurrent use. A session runs one reader and one writer goroutine, which
// Close stops and waits for; always call Close.
type Session struct {
	conn   *websocket.Conn
	nextID atomic.Uint64

	wake       chan struct{} // capacity 1: the outbox has messages
	stop       chan struct{} // closed by Close: the writer returns
	done       chan struct{} // closed when the session has ended (err is set)
	readerDone chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once

	mu      sync.Mutex // guards the fields below
	outbox  [][]byte   // encoded requests for the writer, in order
	pending map[string]*call
	subs    map[string]*Subscription
	err     error // why the session ended; set when done is closed

	maxQueued int // see WithMaxQueued
}

// call is a request waiting for its reply.
type call struct {
	reply     chan api.Message // capacity 1
	sub       *Subscription    // subscribe: registered by the reader on ok
	abandoned bool             // subscribe whose caller gave up: unsubscribe on ok
}

// Dial opens a websocket session at /api/v1/ws, sending the client's token
// on the handshake. A refused handshake returns an *api.Error (such as
// api.ErrUnauthorized).
func (c *Client) Dial(ctx context.Context) (*Session, error) {
	if c.urlErr != nil {
		return nil, c.urlErr
	}
	scheme := "ws"
	if c.base.Scheme == "https" {
		scheme = "wss"
	}
	u := scheme + "://" + c.base.Host + c.base.Path + api.Prefix + "/ws"
	d := websocket.Dialer{HandshakeTimeout: handshakeWait, Proxy: http.ProxyFromEnvironment}
	if t, ok := c.hc.Transport.(*http.Transport); ok {
		d.Proxy, d.NetDialContext, d.TLSClientConfig = t.Proxy, t.DialContext, t.TLSClientConfig
	}
	h := http.Header{}
	c.authorize(h)
	conn, resp, err := d.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			return nil, responseError(resp.StatusCode, b)
		}
		return nil, fmt.Errorf("client: websocket %s: %w", u, err)
	}
	s := &Session{
		conn:       conn,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		pending:    make(map[string]*call),
		subs:       make(map[string]*Subscription),
		maxQueued:  MaxQueued,
	}
	if c.queued > 0 {
		s.maxQueued = c.queued
	}
	conn.SetReadLimit(maxMessage)
	_ = conn.SetReadDeadline(time.Now().Add(api.WSPongWait))
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(api.WSPongWait))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	go s.readLoop()
	go s.writeLoop()
	return s, nil
}

// Close ends the session: it sends a close frame, stops the writer, waits
// a little for the server's close frame, closes the connection and waits
// for both goroutines. Requests still waiting return ErrSessionClosed.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		_ = s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeWait))
		close(s.stop)
		<-s.writerDone
		t := time.NewTimer(closeGrace)
		select {
		case <-s.readerDone: // the server answered the close frame
		case <-t.C:
		}
		t.Stop()
		_ = s.conn.Close()
		<-s.readerDone
		s.end(ErrSessionClosed)
	})
	return nil
}

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns nil while the session is live, then the error that ended it,
// which wraps ErrSessionClosed.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// end records why the session ended, the first time it is called.
func (s *Session) end(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if errors.Is(cause, ErrSessionClosed) {
		s.err = cause
	} else {
		s.err = fmt.Errorf("%w: %w", ErrSessionClosed, cause)
	}
	close(s.done)
}

// readLoop reads the server's messages until the connection fails or is
// closed: replies go to their callers, events to their subscriptions.
func (s *Session) readLoop() {
	defer close(s.readerDone)
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			s.end(err)
			return
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(api.WSPongWait))
		var m api.Message
		if err := json.Unmarshal(data, &m); err != nil {
			s.end(fmt.Errorf("client: bad message from server: %w", err))
			_ = s.conn.Close() // nothing more can be trusted; the writer fails too
			return
		}
		s.dispatch(m)
	}
}

func (s *Session) dispatch(m api.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Type == api.TypeEvent {
		if sub := s.subs[m.Sub]; sub != nil && m.Event != nil && !sub.push(*m.Event) {
			delete(s.subs, m.Sub)
			s.enqueueLocked(api.Request{Op: api.OpUnsubscribe, Sub: m.Sub})
		}
		return
	}
	c := s.pending[m.ID]
	if c == nil {
		return // a reply to a request sent without waiting (unsubscribe)
	}
	delete(s.pending, m.ID)
	if c.sub != nil && m.Type == api.TypeOK {
		if c.abandoned {
			s.enqueueLocked(api.Request{Op: api.OpUnsubscribe, Sub: m.Sub})
			return
		}
		// Registered here, before the next message is read, so that no
		// event of the subscription is missed.
		c.sub.id = m.Sub
		s.subs[m.Sub] = c.sub
	}
	c.reply <- m
}

// enqueueLocked adds a request, with a fresh ID, to the outbox without
// waiting for its reply. s.mu is held.
func (s *Session) enqueueLocked(req api.Request) string {
	req.ID = strconv.FormatUint(s.nextID.Add(1), 10)
	b, err := json.Marshal(req)
	if err != nil {
		panic(err) // a Request always encodes: its Fault's fields are plain values
	}
	s.outbox = append(s.outbox, b)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return req.ID
}

// writeLoop writes the outbox until Close. A failed write ends the session.
func (s *Session) writeLoop() {
	defer close(s.writerDone)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		msgs := s.outbox
		s.outbox = nil
		s.mu.Unlock()
		for _, b := range msgs {
			_ = s.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := s.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				s.end(err)
				_ = s.conn.Close() // the reader returns
				<-s.stop
				return
			}
		}
	}
}

// request sends req and waits for its reply. A reply of type error is
// returned as its *api.Error.
func (s *Session) request(ctx context.Context, req api.Request, sub *Subscription) (api.Message, error) {
	c := &call{reply: make(chan api.Message, 1), sub: sub}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return api.Message{}, err
	}
	id := s.enqueueLocked(req)
	s.pending[id] = c
	s.mu.Unlock()
	select {
	case m := <-c.reply:
		if m.Type == api.TypeError {
			return m, replyError(m)
		}
		return m, nil
	case <-ctx.Done():
		s.abandon(id, c)
		return api.Message{}, ctx.Err()
	case <-s.done:
		return api.Message{}, s.Err()
	}
}

// abandon forgets the request id whose caller gave up. A subscription it
// made or will make is unsubscribed.
func (s *Session) abandon(id string, c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; ok {
		if c.sub == nil {
			delete(s.pending, id)
		} else {
			c.abandoned = true
		}
		return
	}
	if c.sub != nil && c.sub.id != "" && s.subs[c.sub.id] == c.sub {
		delete(s.subs, c.sub.id)
		s.enqueueLocked(api.Request{Op: api.OpUnsubscribe, Sub: c.sub.id})
	}
}

func replyError(m api.Message) error {
	if m.Error != nil {
		return m.Error
	}
	return api.Errorf(api.ErrInternal, "error reply without an error")
}

// Inject adds f to the proxy named proxyName and returns it as in force.
// The server replies only once the fault is in force on every connection
// it targets: a byte sent after Inject returns goes through it.
func (s *Session) Inject(ctx context.Context, proxyName string, f faults.Fault) (faults.Fault, error) {
	m, err := s.request(ctx, api.Request{Op: api.OpInject, Proxy: proxyName, Fault: &f}, nil)
	return replyFault(m, f), err
}

// Update replaces the fault named f.Name of the proxy named proxyName with
// f and returns it as in force, once it is.
func (s *Session) Update(ctx context.Context, proxyName string, f faults.Fault) (faults.Fault, error) {
	m, err := s.request(ctx, api.Request{Op: api.OpUpdate, Proxy: proxyName, Fault: &f}, nil)
	return replyFault(m, f), err
}

func replyFault(m api.Message, sent faults.Fault) faults.Fault {
	if m.Fault != nil {
		return *m.Fault
	}
	if m.Type == api.TypeOK {
		return sent
	}
	return faults.Fault{}
}

// Clear removes the fault named name from the proxy named proxyName.
func (s *Session) Clear(ctx context.Context, proxyName, name string) error {
	_, err := s.request(ctx, api.Request{Op: api.OpClear, Proxy: proxyName, Name: name}, nil)
	return err
}

// ClearAll removes every fault of the proxy named proxyName, or of every
// proxy if proxyName is empty.
func (s *Session) ClearAll(ctx context.Context, proxyName string) error {
	_, err := s.request(ctx, api.Request{Op: api.OpClearAll, Proxy: proxyName}, nil)
	return err
}

// FromNow, passed to Subscribe as the cursor, starts a subscription with
// the next event to happen.
const FromNow = ^uint64(0)

// Subscribe starts a subscription to the events of the proxy named
// proxyName (every proxy if empty) of the given kinds (every kind if
// none), from the event after the cursor after: FromNow for the events to
// come, 0 for every event the server still keeps. Read them with Next;
// events are queued, in order, as they arrive.
func (s *Session) Subscribe(ctx context.Context, proxyName string, kinds []string, after uint64) (*Subscription, error) {
	sub := &Subscription{s: s, wake: make(chan struct{}, 1)}
	req := api.Request{Op: api.OpSubscribe, Proxy: proxyName, Kinds: kinds}
	if after != FromNow {
		req.After = &after
	}
	if _, err := s.request(ctx, req, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// Subscription is a live event subscription of a Session.
type Subscription struct {
	s    *Session
	id   string        // the server's; set once, before any event
	wake chan struct{} // capacity 1: queue or err changed

	mu    sync.Mutex // guards the fields below
	queue []api.Event
	err   error // ErrUnsubscribed or ErrOverflow, once ended
}

// ID returns the server's name for the subscription.
func (sub *Subscription) ID() string { return sub.id }

// push queues e; it reports false, ending the subscription, if MaxQueued
// events (or WithMaxQueued's bound) were already waiting.
func (sub *Subscription) push(e api.Event) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	ok := len(sub.queue) < sub.s.maxQueued
	if ok {
		sub.queue = append(sub.queue, e)
	} else {
		sub.err = ErrOverflow
	}
	select {
	case sub.wake <- struct{}{}:
	default:
	}
	return ok
}

// Err reports, without waiting, whether the subscription was ended by
// Unsubscribe (ErrUnsubscribed) or by overflowing (ErrOverflow); nil
// otherwise (the end of its session is what Next reports). Events queued
// before the end are still returned by Next.
func (sub *Subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

// Next returns the next event, waiting for one. Once the subscription or
// its session has ended it returns the events still queued, then the
// reason: ErrUnsubscribed, ErrOverflow or the session's error.
func (sub *Subscription) Next(ctx context.Context) (api.Event, error) {
	for {
		sub.mu.Lock()
		if len(sub.queue) > 0 {
			e := sub.queue[0]
			sub.queue[0] = api.Event{}
			sub.queue = sub.queue[1:]
			sub.mu.Unlock()
			return e, nil
		}
		err := sub.err
		sub.mu.Unlock()
		if err != nil {
			return api.Event{}, err
		}
		select {
		case <-sub.wake:
		case <-ctx.Done():
			return api.Event{}, ctx.Err()
		case <-sub.s.done:
			sub.mu.Lock()
			n := len(sub.queue)
			sub.mu.Unlock()
			if n == 0 {
				return api.Event{}, sub.s.Err()
			}
		}
	}
}

// Unsubscribe ends the subscription. Events already queued can still be
// read with Next.
func (sub *Subscription) Unsubscribe(ctx context.Context) error {
	s := sub.s
	s.mu.Lock()
	if s.subs[sub.id] == sub {
		delete(s.subs, sub.id) // no event is queued after this
	}
	s.mu.Unlock()
	sub.mu.Lock()
	if sub.err == nil {
		sub.err = ErrUnsubscribed
	}
	sub.mu.Unlock()
	_, err := s.request(ctx, api.Request{Op: api.OpUnsubscribe, Sub: sub.id}, nil)
	return err
}
