package control

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/faultline-proxy/faultline/control/api"
)

// A panic while serving one request or one websocket message must not take
// the process down, nor leave the client without an answer: the HTTP
// handlers and each websocket message and goroutine recover, log a line
// and go on.

// recoverHTTP answers a request whose handler panicked with a JSON 500 and
// logs it; net/http alone would drop the connection and print the stack to
// stderr. A response already under way is cut off (its client sees a
// broken response, never a short one that looks whole), and a websocket
// handler cleans up after itself.
func (s *Server) recoverHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &panicWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // a deliberate abort
			}
			s.logPanic(v, "method", r.Method, "path", r.URL.Path)
			switch {
			case pw.hijacked:
			case pw.wrote:
				panic(http.ErrAbortHandler)
			default:
				writeError(pw, api.Errorf(api.ErrInternal, "internal error serving %s %s: %v (logged; the server goes on)", r.Method, r.URL.Path, v))
			}
		}()
		s.hook("http " + r.Method + " " + r.URL.Path)
		next.ServeHTTP(pw, r)
	})
}

// logPanic logs a recovered panic with its stack, in one line.
func (s *Server) logPanic(v any, attrs ...any) {
	attrs = append(attrs, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.opts.Logger.Error("control: recovered from a panic", attrs...)
}

// hook calls the panic hook tests set, at a point inside a recovery
// boundary: "http METHOD PATH", "ws OP", "ws-sub" or "ws-write".
func (s *Server) hook(at string) {
	if h := s.panicHook.Load(); h != nil {
		(*h)(at)
	}
}

// panicWriter records whether the response has started, so that
// recoverHTTP knows whether a 500 can still be sent.
type panicWriter struct {
	http.ResponseWriter
	wrote    bool // a status or body was written
	hijacked bool // a websocket took the connection
}

func (w *panicWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *panicWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *panicWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is what the websocket upgrade needs.
func (w *panicWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("control: the response writer cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap is for http.ResponseController.
func (w *panicWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
