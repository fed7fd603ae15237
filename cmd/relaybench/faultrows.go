package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// startFaultlineFault starts the faultline binary with its control server
// on a free port, then adds a 1ns latency fault (the shortest; a latency
// of 0 is refused as doing nothing) on both directions through the
// control API. The fault is in force when the POST returns.
func startFaultlineFault(ctx context.Context, cfg *config, up string) (*relay, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	control := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r, err := startLineRelay(ctx, cfg, rowFaultlineFault, []string{cfg.faultline, "run",
		"--name", "bench", "--listen", "127.0.0.1:0", "--upstream", up, "--control", control})
	if err != nil {
		return nil, err
	}
	base := "http://" + control + "/api/v1"
	if err := waitHTTP(ctx, base+"/healthz", cfg.startTimeout); err == nil {
		err = postJSON(ctx, base+"/proxies/bench/faults", `{"name":"zero","kind":"latency","delay":"1ns","dir":"both"}`)
	}
	if err != nil {
		r.Stop()
		return nil, fmt.Errorf("%s: %w", rowFaultlineFault, err)
	}
	return r, nil
}

// startToxiproxy starts toxiproxy-server on a free API port and creates a
// proxy on another free port. With toxic (the toxiproxy-fault row) it adds
// a 0 ms latency toxic to each stream (upstream and downstream), the same
// as faultline's fault on both directions; without (the toxiproxy row) the
// proxy has no toxic.
func startToxiproxy(ctx context.Context, cfg *config, name, path, up string, toxic bool) (*relay, error) {
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	listenPort, err := freePort()
	if err != nil {
		return nil, err
	}
	r, err := launch(name, []string{path, "-host", "127.0.0.1", "-port", strconv.Itoa(apiPort)}, nil, "")
	if err != nil {
		return nil, err
	}
	r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(listenPort))
	base := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	err = waitHTTP(ctx, base+"/version", cfg.startTimeout)
	if err == nil {
		err = postJSON(ctx, base+"/proxies", fmt.Sprintf(`{"name":"bench","listen":%q,"upstream":%q,"enabled":true}`, r.addr, up))
	}
	for _, stream := range []string{"upstream", "downstream"} {
		if err == nil && toxic {
			err = postJSON(ctx, base+"/proxies/bench/toxics",
				fmt.Sprintf(`{"name":"zero_%s","type":"latency","stream":%q,"attributes":{"latency":0,"jitter":0}}`, stream, stream))
		}
	}
	if err == nil {
		err = r.waitAccepting(ctx, cfg.startTimeout)
	}
	if err != nil {
		r.Stop()
		return nil, fmt.Errorf("%s: %w%s", name, err, r.outputTail())
	}
	return r, nil
}

// waitHTTP polls url until it answers 200 or timeout passes.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// postJSON posts body to url and fails unless the answer is 2xx.
func postJSON(ctx context.Context, url, body string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}
