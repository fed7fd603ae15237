package testkit

import (
	"log/slog"
	"time"

	"github.com/faultline-proxy/faultline/proxy"
)

// An Option changes the configuration of a Proxy before it starts.
type Option func(*proxy.Config)

// WithMode sets the proxy's mode, proxy.ModeDial (the default) or
// proxy.ModePool.
func WithMode(m proxy.Mode) Option { return func(c *proxy.Config) { c.Mode = m } }

// WithPool sets proxy.ModePool and the pool's configuration; the zero
// PoolConfig gives the proxy package's defaults.
func WithPool(pc proxy.PoolConfig) Option {
	return func(c *proxy.Config) { c.Mode, c.Pool = proxy.ModePool, pc }
}

// WithSeed seeds the random choices of faults that bring no seed of their
// own, so that a run can be replayed.
func WithSeed(seed uint64) Option { return func(c *proxy.Config) { c.Seed = seed } }

// WithDialTimeout bounds dialing the upstream (and, in pool mode, waiting
// for a free slot). If zero, proxy.DefaultDialTimeout is used; if negative,
// there is no bound.
func WithDialTimeout(d time.Duration) Option { return func(c *proxy.Config) { c.DialTimeout = d } }

// WithLogger sends the proxy's own log lines to l.
func WithLogger(l *slog.Logger) Option { return func(c *proxy.Config) { c.Logger = l } }
