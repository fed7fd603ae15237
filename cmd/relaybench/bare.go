package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// The bare relay is the floor every other relay is compared with: per
// accepted connection, dial the upstream, io.Copy both ways in two
// goroutines, close both sides when either copy ends. Nothing else. It runs
// in its own process (the harness re-executed with the hidden flags below)
// so that its RSS is measured alone.
const (
	bareListenFlag   = "bare-relay-listen"
	bareUpstreamFlag = "bare-relay-upstream"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("-%s is required", bareUpstreamFlag)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "proxy listening on %s -> %s\n", ln.Addr(), *upstream)

	r := &bareRelay{upstream: *upstream, conns: make(map[net.Conn]struct{})}
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
		r.wg.Go(func() { r.session(c) })
	}
	r.closeAll()
	r.wg.Wait()
	return nil
}

type bareRelay struct {
	upstream string
	wg       sync.WaitGroup // sessions

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
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
