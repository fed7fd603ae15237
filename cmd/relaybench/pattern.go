package main

import (
	"hash/crc32"
	"io"
	"math/rand/v2"
	"sync"
)

// The bulk stream is a fixed pseudo-random block repeated and cut to length,
// so both ends can check it with a CRC-32C (hardware-accelerated, cheap next
// to the copy) without keeping the data.
const (
	patternLen = 1 << 20
	ioChunk    = 256 << 10
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	pattern    = func() []byte {
		b := make([]byte, patternLen)
		r := rand.NewChaCha8([32]byte{'r', 'e', 'l', 'a', 'y', 'b', 'e', 'n', 'c', 'h'})
		r.Read(b)
		return b
	}()

	crcMu    sync.Mutex // guards crcCache
	crcCache = map[int64]uint32{}
)

// patternCRC is the CRC-32C of the first n bytes of the stream.
func patternCRC(n int64) uint32 {
	crcMu.Lock()
	defer crcMu.Unlock()
	if sum, ok := crcCache[n]; ok {
		return sum
	}
	var sum uint32
	for off := int64(0); off < n; {
		k := min(int64(patternLen), n-off)
		sum = crc32.Update(sum, castagnoli, pattern[:k])
		off += k
	}
	crcCache[n] = sum
	return sum
}

// writePattern writes the first n bytes of the stream to w.
func writePattern(w io.Writer, n int64) (int64, error) {
	var sent int64
	for sent < n {
		off := sent % patternLen
		k := min(int64(ioChunk), patternLen-off, n-sent)
		m, err := w.Write(pattern[off : off+k])
		sent += int64(m)
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// readPattern reads exactly n bytes from r and returns how many it read and
// their CRC-32C.
func readPattern(r io.Reader, n int64) (int64, uint32, error) {
	buf := make([]byte, ioChunk)
	var (
		got int64
		sum uint32
	)
	for got < n {
		k := min(int64(len(buf)), n-got)
		m, err := r.Read(buf[:k])
		sum = crc32.Update(sum, castagnoli, buf[:m])
		got += int64(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return got, sum, err
		}
	}
	return got, sum, nil
}
