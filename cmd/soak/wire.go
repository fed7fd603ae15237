package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
)

// A message on the wire is a 24-byte header and a payload:
//
//	magic  [4]byte  "FLRQ" (a request, also what the echo upstream returns) or "FLRP" (a reply)
//	conn   uint64   the client connection's run-unique ID
//	seq    uint32   the exchange's number on that connection, from 1
//	length uint32   payload bytes
//	sum    uint32   CRC-32C of header bytes 4..20 and the payload
//
// So a byte that changed on the way fails the sum, and a message that
// belongs to another client or exchange names the one it belongs to.
const (
	headerLen  = 24
	maxPayload = 1 << 20 // bound on what a reader accepts from a header
)

var (
	magicRequest = [4]byte{'F', 'L', 'R', 'Q'}
	magicReply   = [4]byte{'F', 'L', 'R', 'P'}
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadFrame is wrapped by parseHeader and checkFrame's errors.
var errBadFrame = errors.New("bad frame")

// header is a message's header, decoded.
type header struct {
	magic  [4]byte
	conn   uint64
	seq    uint32
	length uint32
	sum    uint32
}

// frame encodes a message with the given magic, conn, seq and payload.
func frame(magic [4]byte, conn uint64, seq uint32, payload []byte) []byte {
	b := make([]byte, headerLen+len(payload))
	copy(b, magic[:])
	binary.BigEndian.PutUint64(b[4:], conn)
	binary.BigEndian.PutUint32(b[12:], seq)
	binary.BigEndian.PutUint32(b[16:], uint32(len(payload)))
	copy(b[headerLen:], payload)
	binary.BigEndian.PutUint32(b[20:], frameSum(b[4:20], payload))
	return b
}

func frameSum(fields, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(fields, castagnoli), castagnoli, payload)
}

// parseHeader decodes a header; it fails for an unknown magic or a length
// beyond maxPayload.
func parseHeader(b []byte) (header, error) {
	var h header
	copy(h.magic[:], b[:4])
	h.conn = binary.BigEndian.Uint64(b[4:])
	h.seq = binary.BigEndian.Uint32(b[12:])
	h.length = binary.BigEndian.Uint32(b[16:])
	h.sum = binary.BigEndian.Uint32(b[20:])
	if h.magic != magicRequest && h.magic != magicReply {
		return h, fmt.Errorf("%w: magic %q", errBadFrame, h.magic[:])
	}
	if h.length > maxPayload {
		return h, fmt.Errorf("%w: length %d", errBadFrame, h.length)
	}
	return h, nil
}

// checkSum reports whether payload matches the header's sum; hb is the
// encoded header.
func checkSum(hb, payload []byte) error {
	h, err := parseHeader(hb)
	if err != nil {
		return err
	}
	if got := frameSum(hb[4:20], payload); got != h.sum {
		return fmt.Errorf("%w: checksum %08x, header says %08x", errBadFrame, got, h.sum)
	}
	return nil
}

// replyPayload is the payload the request/response upstream answers to
// exchange seq of connection conn: its length follows from the run's seed,
// conn and seq, its bytes from conn and seq (see payload), so the client
// knows what to expect and a reply meant for another client differs from
// its own.
func replyPayload(seed, conn uint64, seq uint32) []byte {
	r := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, conn<<20^uint64(seq)))
	return payload(conn, seq, true, messageSize(r))
}

// A payload is made of 16-byte blocks, the last one cut short: the
// connection's ID, the sequence number (its top bit set in a reply) and the
// block's index. So every byte of every message of the run is distinct from
// the byte at the same place of any other message, and bytes that reach the
// wrong client say whose they were (ownerOf).
const blockLen = 16

const replyBit = 1 << 31

func payload(conn uint64, seq uint32, reply bool, n int) []byte {
	if reply {
		seq |= replyBit
	}
	b := make([]byte, n)
	var blk [blockLen]byte
	binary.BigEndian.PutUint64(blk[0:], conn)
	binary.BigEndian.PutUint32(blk[8:], seq)
	for off, i := 0, uint32(0); off < n; off, i = off+blockLen, i+1 {
		binary.BigEndian.PutUint32(blk[12:], i)
		copy(b[off:], blk[:])
	}
	return b
}

// owner is the message that stray bytes belong to.
type owner struct {
	conn   uint64
	seq    uint32
	reply  bool
	offset int // of the first stray byte in the message's payload
	n      int // stray bytes that match the message there
}

func (o owner) String() string {
	what := "request"
	if o.reply {
		what = "reply"
	}
	return fmt.Sprintf("%d bytes of conn %d seq %d's %s payload, from its byte %d", o.n, o.conn, o.seq, what, o.offset)
}

// ownerOf finds in stray bytes (bytes a client did not expect) a whole
// payload block of a connection that plausible accepts, and returns the
// message it belongs to if the stray bytes match that message from their
// first byte to the block's end at least.
func ownerOf(b []byte, plausible func(conn uint64) bool) (owner, bool) {
	for shift := 0; shift < blockLen && shift+blockLen <= len(b); shift++ {
		conn := binary.BigEndian.Uint64(b[shift:])
		s := binary.BigEndian.Uint32(b[shift+8:])
		idx := binary.BigEndian.Uint32(b[shift+12:])
		seq := s &^ replyBit
		off := int(idx)*blockLen - shift
		if !plausible(conn) || seq == 0 || seq > maxExchanges || idx > maxPayload/blockLen || off < 0 {
			continue
		}
		want := payload(conn, seq, s&replyBit != 0, off+len(b))[off:]
		n := 0
		for n < len(b) && b[n] == want[n] {
			n++
		}
		if n >= shift+blockLen {
			return owner{conn: conn, seq: seq, reply: s&replyBit != 0, offset: off, n: n}, true
		}
	}
	return owner{}, false
}

// messageSize draws a message's payload length: mostly small, some
// kilobytes, a few tens of kilobytes.
func messageSize(r *rand.Rand) int {
	switch p := r.IntN(100); {
	case p < 70:
		return 1 + r.IntN(512)
	case p < 95:
		return 513 + r.IntN(8<<10)
	default:
		return 8<<10 + r.IntN(24<<10)
	}
}

// replyDelay is how long the request/response upstream waits before it
// answers exchange seq of connection conn: none for half the requests, up
// to max for the others, from the seed.
func replyDelay(seed, conn uint64, seq uint32, max int64) int64 {
	if max <= 0 {
		return 0
	}
	r := rand.New(rand.NewPCG(seed^0x243f6a8885a308d3, conn<<20^uint64(seq)))
	if r.IntN(2) == 0 {
		return 0
	}
	return 1 + r.Int64N(max)
}
