package quickstart_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/proxy"
	"github.com/faultline-proxy/faultline/testkit"
)

// The client under test: net/http's, with a timeout. Put yours here.
const timeout = 200 * time.Millisecond

func TestClientGivesUpOnStalledServer(t *testing.T) {
	// The server the client talks to, on a free loopback port.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)

	// A proxy in front of it, recording every event; closed when the test ends.
	px := testkit.NewProxy(t, srv.Listener.Addr().String())
	client := &http.Client{Timeout: timeout}
	url := "http://" + px.Addr() + "/" // the client talks to the proxy

	if err := get(client, url); err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}

	// Hold every byte from the server to the client, on the idle
	// connection in the client's pool and on new ones.
	stall := px.Inject(faults.Stall(false).WithDir(faults.Down))
	if err := get(client, url); err == nil {
		t.Fatal("GET through a stall succeeded, want a timeout")
	}
	px.Await(proxy.EventHalfClosed, testkit.InDir(faults.Up)) // the client closed its connection
	if err := testkit.CheckGaveUpWithin(px.Events(), timeout, 5*time.Second); err != nil {
		t.Error(err) // the client waited past its timeout
	}
	stall.Clear() // held bytes are delivered; new bytes flow

	if err := get(client, url); err != nil {
		t.Fatalf("GET after the stall: %v", err)
	}
	if err := testkit.CheckNoWriteAfterClose(px.Events()); err != nil {
		t.Error(err) // the client's pool wrote on a connection the server had closed
	}
	client.CloseIdleConnections()
	if err := testkit.Within(5*time.Second, func() error { return testkit.CheckNothingOpen(px) }); err != nil {
		t.Error(err) // the client leaked a connection
	}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}
