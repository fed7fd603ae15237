package faults_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/faultline-proxy/faultline/faults"
)

// Latency one way: with Dir Down, each chunk of the upstream's replies
// comes 150ms (plus up to 20ms of jitter) late, and requests go up at once.
// A fault's JSON form is what the control API and the config file take.
func ExampleLatency() {
	f := faults.Latency(150*time.Millisecond, 20*time.Millisecond).WithDir(faults.Down)
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output: {"kind":"latency","dir":"down","delay":"150ms","jitter":"20ms"}
}

// The connection ends after 1 KiB of reply: Limit relays 1024 more bytes
// down on each connection it applies to, then closes it both ways with a
// FIN, as a server that hangs up mid-reply.
func ExampleLimit() {
	f := faults.Limit(1024).WithDir(faults.Down)
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output: {"kind":"limit","dir":"down","bytes":1024}
}

// An RST toward the client of the next new connection, 2s after the fault
// is added: the client sees ECONNRESET as if the upstream had reset.
func ExampleReset() {
	f := faults.Reset(faults.ToClient).
		WithTarget(faults.Target{Which: faults.New, Count: 1}).
		WithAfter(2 * time.Second)
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output: {"kind":"reset","side":"client","target":{"which":"new","count":1},"after":"2s"}
}

// A stall on the Nth exchange: on each connection the first two replies go
// through and the reply to the 3rd request is held, from its first byte,
// until the fault is removed, here 5s after it is added (WithFor).
func ExampleFault_WithExchange() {
	f := faults.Stall(false).WithDir(faults.Down).WithExchange(3, 0).WithFor(5 * time.Second)
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output: {"kind":"stall","dir":"down","from_exchange":3,"for":"5s"}
}

// Normalized fills in the defaults and checks a fault, as a proxy's
// AddFault does; an error names the field.
func ExampleFault_Normalized() {
	_, err := faults.Latency(0, 0).Normalized()
	fmt.Println(err)
	_, err = faults.HalfClose(faults.Both).Normalized()
	fmt.Println(err)
	// Output:
	// faults: invalid fault: latency: missing delay: latency needs a delay or a jitter
	// faults: invalid fault: half-close: dir must be up or down
}
