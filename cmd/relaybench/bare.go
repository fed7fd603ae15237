package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// The bare relay is the ceiling every other relay is compared with: per
// accepted connection, dial the upstream, io.Copy both ways in two
// goroutines, close both sides when either copy ends. Nothing else. It runs
// in its own process (the harness re-executed with the hidden flags below)
// so that its RSS is measured alone.
//
// With -bare-relay-pool N it is the bare pool relay, the same ceiling for
// pool mode: upstream connections are taken from a LIFO list of up to N
// idle ones (dialed when it is empty), and one goes back when the client's
// side ended with EOF and the interrupt, a read deadline in the past on the
// upstream connection, stopped the other copy. It checks nothing at borrow
// or release: no probe, no count of stranded or unread bytes, no age.
const (
	bareListenFlag   = "bare-relay-listen"
	bareUpstreamFlag = "bare-relay-upstream"
	barePoolFlag     = "bare-relay-pool"
)

// isBareRelayArgs reports whether args ask for the bare relay subprocess.
func isBareRelayArgs(args []string) bool {
	return len(args) > 0 && strings.HasPrefix(strings.TrimLeft(args[0], "-"), "bare-relay-")
}

// runBareRelay serves until ctx is done, then closes everything and returns
// once every goroutine it started has exited.
func runBareRelay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bare-relay", flag.ContinueOnError)
	listen := fs.String(bareListenFlag, "127.0.0.1:0", "listen address")
	upstream := fs.String(bareUpstreamFlag, "", "upstream address")
	maxIdle := fs.Int(barePoolFlag, 0, "pool up to this many idle upstream connections (0: dial one per connection)")
	epoll := fs.Bool(bareEpollFlag, false, "the epoll pool relay (epollpool.go) instead; needs -"+barePoolFlag)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("-%s is required", bareUpstreamFlag)
	}
	if *maxIdle < 0 {
		return fmt.Errorf("-%s %d: want 0 or more", barePoolFlag, *maxIdle)
	}
	if *epoll {
		if *maxIdle == 0 {
			return fmt.Errorf("-%s needs -%s N with N > 0", bareEpollFlag, barePoolFlag)
		}
		return runEpollPool(ctx, *listen, *upstream, *maxIdle, stdout)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "proxy listening on %s -> %s\n", ln.Addr(), *upstream)

	r := &bareRelay{upstream: *upstream, maxIdle: *maxIdle, conns: make(map[net.Conn]struct{})}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		r.closeAll()
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			break
		}
		if err != nil { // e.g. out of fds: wait for sessions to end
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if r.maxIdle > 0 {
			r.wg.Go(func() { r.poolSession(c) })
		} else {
			r.wg.Go(func() { r.session(c) })
		}
	}
	r.closeAll()
	r.wg.Wait()
	return nil
}

type bareRelay struct {
	upstream string
	maxIdle  int            // pool mode if > 0
	wg       sync.WaitGroup // sessions

	mu     sync.Mutex // guards conns, idle and closed
	conns  map[net.Conn]struct{}
	idle   []net.Conn // pool mode: most recently released last
	closed bool
}

func (r *bareRelay) session(down net.Conn) {
	if !r.track(down) {
		down.Close()
		return
	}
	defer r.untrack(down)
	up, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return
	}
	if !r.track(up) {
		up.Close()
		return
	}
	defer r.untrack(up)

	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			down.Close()
			up.Close()
		})
	}
	// Two goroutines per connection: this one copies one way, one more
	// copies the other.
	done := make(chan struct{})
	go func() {
		defer close(done)
		bareCopy(up, down, closeBoth)
	}()
	bareCopy(down, up, closeBoth)
	<-done
}

// bareCopy is one direction of a bare session; named for stack dumps.
func bareCopy(dst, src net.Conn, closeBoth func()) {
	io.Copy(dst, src)
	closeBoth()
}

// poolSession relays one connection over a pooled upstream connection: the
// client's EOF ends the session, and the upstream connection goes back if
// the interrupt is what stopped the other copy.
func (r *bareRelay) poolSession(down net.Conn) {
	if !r.track(down) {
		down.Close()
		return
	}
	defer r.untrack(down)
	up := r.borrow()
	if up == nil {
		return
	}
	downErr := make(chan error, 1)
	go func() {
		err := barePoolCopy(down, up)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			down.Close() // the upstream ended first: stop the other copy
		}
		downErr <- err
	}()
	if err := barePoolCopy(up, down); err != nil {
		r.untrack(up) // stops the other copy
		<-downErr
		return
	}
	up.SetReadDeadline(time.Unix(1, 0))
	if err := <-downErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		r.untrack(up)
		return
	}
	up.SetReadDeadline(time.Time{})
	r.release(up)
}

// release pools up, or closes it if the pool is full or the relay closing.
func (r *bareRelay) release(up net.Conn) {
	r.mu.Lock()
	if !r.closed && len(r.idle) < r.maxIdle {
		r.idle = append(r.idle, up)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.untrack(up)
}

// barePoolCopy is one direction of a bare pool session; named for stack dumps.
func barePoolCopy(dst, src net.Conn) error {
	_, err := io.Copy(dst, src)
	return err
}

// borrow returns the most recently released idle connection, or a new one;
// nil if dialing failed or the relay is closing.
func (r *bareRelay) borrow() net.Conn {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		up := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return up
	}
	r.mu.Unlock()
	up, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return nil
	}
	if !r.track(up) {
		up.Close()
		return nil
	}
	return up
}

func (r *bareRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *bareRelay) untrack(c net.Conn) {
	c.Close()
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

func (r *bareRelay) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
}
