package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/faultline-proxy/faultline/control/api"
)

// ErrBadURL is returned by New's Client methods when the base URL given to
// New cannot be parsed or is not http or https.
var ErrBadURL = errors.New("client: invalid base URL")

// maxErrorBody is the most of an error response's body that is read.
const maxErrorBody = 64 << 10

// Client calls the control API of one faultline instance. It is safe for
// concurrent use. Every method that fails because of the server's answer
// returns an *api.Error; match it with errors.Is against api.ErrNotFound
// and the other sentinels.
type Client struct {
	base   *url.URL // scheme and host; Path is the prefix before /api/v1, if any
	urlErr error    // from parsing the base URL; returned by every call
	token  string
	hc     *http.Client
	queued int // Subscription's bound on unread events; 0: MaxQueued
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer TOKEN" on every request
// and on the websocket handshake.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient makes the Client send its requests with hc instead of
// http.DefaultClient. The websocket handshake uses hc's TLS configuration
// when its Transport is an *http.Transport.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithMaxQueued bounds how many events each Subscription of the Client's
// sessions holds unread before it is ended with ErrOverflow: n instead of
// MaxQueued. n <= 0 means MaxQueued.
func WithMaxQueued(n int) Option { return func(c *Client) { c.queued = n } }

// New returns a Client for the faultline control server at baseURL, such as
// "http://127.0.0.1:8470". A base URL without a scheme gets "http://".
// An invalid one is reported by every call (ErrBadURL).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{hc: http.DefaultClient}
	c.base, c.urlErr = parseBase(baseURL)
	for _, o := range opts {
		o(c)
	}
	return c
}

func parseBase(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: %q: scheme must be http or https", ErrBadURL, s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrBadURL, s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u, nil
}

// URL returns the base URL the client talks to.
func (c *Client) URL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// endpoint returns the URL of an API path built from segments (each
// escaped) under the prefix, with query q (may be nil).
func (c *Client) endpoint(q url.Values, segments ...string) string {
	if c.base == nil {
		return "" // do reports c.urlErr
	}
	var b strings.Builder
	b.WriteString(c.base.Scheme + "://" + c.base.Host + c.base.Path + api.Prefix)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	if len(q) > 0 {
		b.WriteString("?" + q.Encode())
	}
	return b.String()
}

// do sends a request with in as its JSON body (if not nil) and decodes a
// 2xx answer into out (if not nil). Any other answer is an *api.Error.
func (c *Client) do(ctx context.Context, method, u string, in, out any) error {
	if c.urlErr != nil {
		return c.urlErr
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // a *url.Error naming the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return responseError(resp.StatusCode, b)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: decode answer to %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}

func (c *Client) authorize(h http.Header) {
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
}

// responseError returns the *api.Error of a failed answer: the JSON body
// if it is one, else an error synthesized from the status, with the
// sentinel's code when only one sentinel has that status.
func responseError(status int, body []byte) *api.Error {
	var e api.Error
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		if e.Status == 0 {
			e.Status = status
		}
		return &e
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" || !isText(msg) {
		msg = http.StatusText(status)
	}
	return &api.Error{Status: status, Code: codeForStatus(status), Message: msg}
}

func isText(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || (r < ' ' && r != '\n' && r != '\t' && r != '\r') {
			return false
		}
	}
	return len(s) < 1024
}

// statusCodes maps a status to the code of the only sentinel with that
// status, or the generic one where several share it. A status several
// sentinels share with no generic one (403: forbidden_origin and
// forbidden_host; 409) is left out: its code is http_<status>.
var statusCodes = map[int]string{
	http.StatusBadRequest:            api.ErrBadRequest.Code,
	http.StatusUnauthorized:          api.ErrUnauthorized.Code,
	http.StatusNotFound:              api.ErrNotFound.Code,
	http.StatusMethodNotAllowed:      api.ErrMethod.Code,
	http.StatusGone:                  api.ErrCursorExpired.Code,
	http.StatusRequestEntityTooLarge: api.ErrTooLarge.Code,
	http.StatusInternalServerError:   api.ErrInternal.Code,
	http.StatusServiceUnavailable:    api.ErrUnavailable.Code,
}

func codeForStatus(status int) string {
	if c, ok := statusCodes[status]; ok {
		return c
	}
	return fmt.Sprintf("http_%d", status)
}
