package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/proxy"
)

const (
	websocketGoingAway = websocket.CloseGoingAway
	// wsWriteWait bounds one websocket write; a client that does not read
	// for this long is dropped.
	wsWriteWait = 10 * time.Second
	// wsQueue is how many messages may wait for the writer.
	wsQueue = 1024
	// wsSlowAfter is how long a subscription may wait for room in the
	// queue before its reader is dropped as too slow.
	wsSlowAfter = 5 * time.Second
	// closeSlowReader is the close code sent to a reader that fell behind
	// (1008, policy violation); the close text says what happened.
	closeSlowReader = websocket.ClosePolicyViolation
)

// wsConn is one websocket client. Its handler goroutine reads requests
// and answers them in order; one writer goroutine writes everything the
// connection sends; each subscription has a goroutine that reads the event
// log from its cursor. A slow client never holds up a proxy: the log is
// the buffer, and a client that falls behind it is dropped with a close
// frame that says so.
type wsConn struct {
	s   *Server
	c   *websocket.Conn
	out chan []byte // to the writer, in order

	done      chan struct{}   // closed by close
	ctx       context.Context // cancelled by close; subscriptions derive from it
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeCode int    // set before done is closed
	closeText string // set before done is closed

	sent int // messages send has queued; only the reader goroutine uses it

	mu     sync.Mutex // guards subs and subSeq
	subs   map[string]context.CancelFunc
	subSeq int

	wg sync.WaitGroup // the writer and the subscriptions
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{
		// guard has checked Origin (same host or allowed) and the token.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	wc := &wsConn{s: s, c: c, out: make(chan []byte, s.wsQueue), done: make(chan struct{}), subs: make(map[string]context.CancelFunc)}
	wc.ctx, wc.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocketGoingAway, "server closing"), time.Now().Add(time.Second))
		_ = c.Close()
		return
	}
	s.ws[wc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() { // deferred: a panic in serve (recoverHTTP logs it) still cleans up
		s.mu.Lock()
		delete(s.ws, wc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	wc.serve()
}

// serve reads requests until the client goes or the connection is closed,
// then stops everything the connection started and waits for it.
func (wc *wsConn) serve() {
	wc.wg.Add(1)
	go wc.writeLoop()
	c := wc.c
	defer func() {
		wc.close(websocket.CloseInternalServerErr, "internal error; see the server's log") // if nothing closed it first
		wc.wg.Wait()
		_ = c.Close()
	}()
	c.SetReadLimit(wc.s.opts.MaxBody)
	wait := wc.s.wsPongWait
	_ = c.SetReadDeadline(time.Now().Add(wait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(wait)) })
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				wc.close(websocket.CloseGoingAway, fmt.Sprintf("keepalive: no pong within %s", wait))
			}
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		wc.handle(data)
	}
	wc.close(websocket.CloseNormalClosure, "")
}

// close ends the connection with a close frame carrying code and text.
func (wc *wsConn) close(code int, text string) {
	wc.closeOnce.Do(func() {
		wc.closeCode, wc.closeText = code, text
		close(wc.done)
		wc.cancel()
	})
}

// writeLoop writes queued messages and pings; once the connection is
// closing it sends the close frame and gives the client a second to answer
// before the reader is cut off.
func (wc *wsConn) writeLoop() {
	defer wc.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			wc.s.logPanic(v, "websocket", "writer")
			wc.close(websocket.CloseInternalServerErr, "internal error; see the server's log")
			_ = wc.c.NetConn().Close() // the writer is gone: nothing can send the close frame
		}
	}()
	ping := time.NewTicker(wc.s.wsPing)
	defer ping.Stop()
	for {
		select {
		case b := <-wc.out:
			wc.s.hook("ws-write")
			_ = wc.c.SetWriteDeadline(time.Now().Add(wsWriteWait))
			if err := wc.c.WriteMessage(websocket.TextMessage, b); err != nil {
				wc.close(closeSlowReader, "slow reader: a write timed out")
				_ = wc.c.NetConn().Close() // the client cannot be told
				return
			}
		case <-ping.C:
			if err := wc.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				wc.close(closeSlowReader, "slow reader: a ping timed out")
				_ = wc.c.NetConn().Close()
				return
			}
		case <-wc.done:
			msg := websocket.FormatCloseMessage(wc.closeCode, wc.closeText)
			if wc.closeCode == websocket.CloseNormalClosure && wc.closeText == "" {
				msg = websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
			}
			_ = wc.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			_ = wc.c.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
}

// send queues m for the writer; it reports false if the connection is
// closing. Only the reader goroutine calls it (handle and what it calls).
func (wc *wsConn) send(m api.Message) bool {
	wc.sent++
	b, err := json.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(api.Message{Type: api.TypeError, ID: m.ID, Error: api.Errorf(api.ErrInternal, "%v", err)})
	}
	select {
	case wc.out <- b:
		return true
	case <-wc.done:
		return false
	}
}

func (wc *wsConn) reply(id string, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		ae = api.Errorf(api.ErrInternal, "%v", err)
	}
	wc.send(api.Message{Type: api.TypeError, ID: id, Error: ae})
}

// handle answers one request with exactly one reply. A panic while it
// does is logged and answered with an internal error with the request's
// id (unless the reply was already queued), and the connection goes on.
func (wc *wsConn) handle(data []byte) {
	var req api.Request
	sent := wc.sent
	defer func() {
		if v := recover(); v != nil {
			wc.s.logPanic(v, "websocket", "message", "id", req.ID, "op", req.Op)
			if wc.sent == sent {
				wc.reply(req.ID, api.Errorf(api.ErrInternal, "internal error handling %s: %v (logged; the connection goes on)", req.Op, v))
			}
		}
	}()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var loose struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(data, &loose) // answer with its id if it has one
		wc.reply(loose.ID, bodyError(err))
		return
	}
	if err := checkKeys(data, &req); err != nil { // as HTTP bodies: case-sensitive, no key twice
		wc.reply(req.ID, err)
		return
	}
	if req.ID == "" {
		wc.reply("", api.Errorf(api.ErrBadRequest, "request has no id"))
		return
	}
	s := wc.s
	s.hook("ws " + req.Op)
	switch req.Op {
	case api.OpInject, api.OpUpdate:
		if req.Fault == nil {
			wc.reply(req.ID, api.Errorf(api.ErrBadRequest, "%s needs a fault", req.Op))
			return
		}
		do := s.injectFault
		if req.Op == api.OpUpdate {
			do = s.updateFault
		}
		f, err := do(req.Proxy, *req.Fault)
		if err != nil {
			wc.reply(req.ID, err)
			return
		}
		wc.send(api.Message{Type: api.TypeOK, ID: req.ID, Fault: &f})
	case api.OpClear:
		if err := s.removeFault(req.Proxy, req.Name); err != nil {
			wc.reply(req.ID, err)
			return
		}
		wc.send(api.Message{Type: api.TypeOK, ID: req.ID})
	case api.OpClearAll:
		if err := s.clearFaults(req.Proxy); err != nil {
			wc.reply(req.ID, err)
			return
		}
		wc.send(api.Message{Type: api.TypeOK, ID: req.ID})
	case api.OpSubscribe:
		wc.subscribe(req)
	case api.OpUnsubscribe:
		wc.mu.Lock()
		cancel, ok := wc.subs[req.Sub]
		delete(wc.subs, req.Sub)
		wc.mu.Unlock()
		if !ok {
			wc.reply(req.ID, api.Errorf(api.ErrNotFound, "no subscription %q", req.Sub))
			return
		}
		cancel()
		wc.send(api.Message{Type: api.TypeOK, ID: req.ID, Sub: req.Sub})
	default:
		wc.reply(req.ID, api.Errorf(api.ErrBadRequest, "op %q: want inject, update, clear, clear-all, subscribe or unsubscribe", req.Op))
	}
}

// subscribe starts streaming the log's events that match the request,
// after its cursor (or from now), once the ok is queued.
func (wc *wsConn) subscribe(req api.Request) {
	f := filter{proxy: req.Proxy}
	for _, k := range req.Kinds {
		kind, err := proxy.ParseEventKind(k)
		if err != nil {
			wc.reply(req.ID, api.Errorf(api.ErrBadRequest, "kind %q: not an event kind", k))
			return
		}
		f.kinds = append(f.kinds, kind)
	}
	after := wc.s.log.last()
	if req.After != nil {
		after = *req.After
		if _, _, err := wc.s.log.read(after, 0, f); err != nil {
			wc.reply(req.ID, err)
			return
		}
	}
	ctx, cancel := context.WithCancel(wc.ctx)
	wc.mu.Lock()
	wc.subSeq++
	id := fmt.Sprintf("s%d", wc.subSeq)
	wc.subs[id] = cancel
	wc.mu.Unlock()
	if !wc.send(api.Message{Type: api.TypeOK, ID: req.ID, Sub: id}) {
		cancel()
		return
	}
	wc.wg.Add(1)
	go wc.subLoop(ctx, cancel, id, f, after)
}

// subLoop sends the log's events after the cursor that match f, in order,
// until unsubscribed or the connection closes. A reader that lets the log
// overwrite events it has not been sent, or leaves the queue full for
// wsSlowAfter, is dropped.
func (wc *wsConn) subLoop(ctx context.Context, cancel context.CancelFunc, id string, f filter, after uint64) {
	defer wc.wg.Done()
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			wc.s.logPanic(v, "websocket", "subscription", "sub", id)
			wc.close(websocket.CloseInternalServerErr, fmt.Sprintf("internal error in subscription %s; see the server's log", id))
		}
	}()
	slow := time.NewTimer(wc.s.wsSlowAfter)
	defer slow.Stop()
	for {
		evs, next, err := wc.s.log.read(after, 256, f)
		if err != nil {
			wc.close(closeSlowReader, fmt.Sprintf("slow reader: subscription %s fell behind the event log", id))
			return
		}
		for i := range evs {
			wc.s.hook("ws-sub")
			b, err := json.Marshal(api.Message{Type: api.TypeEvent, Sub: id, Event: &evs[i]})
			if err != nil {
				continue
			}
			slow.Reset(wc.s.wsSlowAfter)
			select {
			case wc.out <- b:
			case <-ctx.Done():
				return
			case <-slow.C:
				wc.close(closeSlowReader, fmt.Sprintf("slow reader: subscription %s could not keep up", id))
				return
			}
		}
		after = next
		if len(evs) == 0 && !wc.s.log.wait(ctx, after) {
			return
		}
	}
}
