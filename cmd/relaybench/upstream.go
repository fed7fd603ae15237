package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// server is an in-process upstream on 127.0.0.1. It owns its accept loop and
// one goroutine per connection; Close stops them all and waits.
type server struct {
	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

func startServer(handle func(net.Conn)) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{ln: ln, handle: handle, conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// Addr is the HOST:PORT the server listens on.
func (s *server) Addr() string { return s.ln.Addr().String() }

func (s *server) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // listener closed
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			s.handle(c)
		})
	}
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, closes every connection and waits for every
// goroutine the server started.
func (s *server) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// echoConn writes back whatever it reads until EOF or error.
func echoConn(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// The bulk protocol, chosen so that it needs no half-close (the bare relay
// closes both sides on the first EOF):
//
//	client -> server: header: uint64 up, uint64 down (big endian)
//	both at once:     client sends up pattern bytes, server sends down pattern bytes
//	server -> client: trailer: uint64 bytes received, uint32 CRC-32C of them
//
// The trailer is sent once the server has both sent and received everything,
// so the client's elapsed time covers both directions completely. The server
// then waits for the next header on the same connection: it never closes
// first, so a pooling relay may reuse the connection.
const (
	bulkHeaderLen  = 16
	bulkTrailerLen = 12
)

// bulkServer is the upstream of the bulk scenario. Its counters let a test
// check from the server's side what the client claims.
type bulkServer struct {
	received atomic.Int64 // pattern bytes read from clients, verified
	sent     atomic.Int64 // pattern bytes written to clients
	failed   atomic.Int64 // sessions that saw an error after the header
}

func (b *bulkServer) serve(c net.Conn) {
	for b.session(c) {
	}
}

// session serves one header-to-trailer exchange and reports whether the
// connection can carry another.
func (b *bulkServer) session(c net.Conn) bool {
	var hdr [bulkHeaderLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return false // the client closed (readiness probes send nothing)
	}
	up := int64(binary.BigEndian.Uint64(hdr[0:8]))
	down := int64(binary.BigEndian.Uint64(hdr[8:16]))
	if up < 0 || down < 0 {
		b.failed.Add(1)
		return false
	}
	var (
		wg   sync.WaitGroup
		sent int64
		werr error
	)
	wg.Go(func() { sent, werr = writePattern(c, down) })
	got, sum, rerr := readPattern(c, up)
	if rerr != nil {
		c.Close() // unblocks the writer
	}
	wg.Wait()
	b.sent.Add(sent)
	if rerr != nil || werr != nil {
		b.failed.Add(1)
		return false
	}
	if got == up && sum == patternCRC(up) {
		b.received.Add(got)
	}
	var tr [bulkTrailerLen]byte
	binary.BigEndian.PutUint64(tr[0:8], uint64(got))
	binary.BigEndian.PutUint32(tr[8:12], sum)
	if _, err := c.Write(tr[:]); err != nil {
		b.failed.Add(1)
		return false
	}
	return true
}

// readTrailer reads and checks the server's trailer for up bytes sent.
func readTrailer(r io.Reader, up int64) error {
	var tr [bulkTrailerLen]byte
	if _, err := io.ReadFull(r, tr[:]); err != nil {
		return fmt.Errorf("reading trailer: %w", err)
	}
	got := int64(binary.BigEndian.Uint64(tr[0:8]))
	sum := binary.BigEndian.Uint32(tr[8:12])
	if got != up || sum != patternCRC(up) {
		return fmt.Errorf("%w: upstream received %d bytes crc %08x, want %d bytes crc %08x",
			errCorrupt, got, sum, up, patternCRC(up))
	}
	return nil
}

var errCorrupt = errors.New("bulk data corrupted")
