package proxy

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Mode selects how a Proxy gets an upstream connection for a session
// (Config.Mode), named "dial" or "pool" (String, ParseMode) in the control
// API, the config file and the CLI:
//
//   - ModeDial ("dial", the zero value): a new upstream connection per
//     session; a FIN is relayed as a FIN (half-close), an RST as an RST.
//   - ModePool ("pool"): upstream connections are borrowed from a pool and
//     clean ones go back when the session ends; a client's FIN ends the
//     session, so protocols that rely on half-close need ModeDial.
type Mode uint8

const (
	// ModeDial dials a new upstream connection for every downstream
	// connection. Both directions are relayed independently: a FIN is relayed
	// as a FIN (half-close) and an RST as an RST.
	ModeDial Mode = iota
	// ModePool borrows upstream connections from a pool and returns clean ones
	// to it when the downstream connection ends. A FIN from the client ends
	// the session (the upstream connection is kept for the next client), so
	// protocols that rely on half-close need ModeDial.
	ModePool
)

// String returns "dial" or "pool".
func (m Mode) String() string {
	switch m {
	case ModeDial:
		return "dial"
	case ModePool:
		return "pool"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "dial" or "pool".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "dial":
		return ModeDial, nil
	case "pool":
		return ModePool, nil
	}
	return 0, fmt.Errorf("%w: %q (want dial or pool)", ErrBadMode, s)
}

// Defaults used where a Config field is zero.
const (
	DefaultDialTimeout     = 5 * time.Second
	DefaultPoolMaxIdle     = 64
	DefaultPoolIdleTimeout = 90 * time.Second
	DefaultPoolMaxLifetime = 30 * time.Minute
)

// Bounds on a Config. WithDefaults (and so Listen) refuses a value beyond
// them with ErrBadConfig; a negative duration (no limit) is always allowed.
const (
	// MaxTimeout bounds DialTimeout, Pool.IdleTimeout and
	// Pool.MaxLifetime.
	MaxTimeout = 24 * time.Hour
	// MaxPoolSize bounds Pool.Size and Pool.MaxIdle.
	MaxPoolSize = 100_000
)

// Config configures a Proxy. The zero value of every field except Upstream
// is useful.
type Config struct {
	// Upstream is the host:port that sessions relay to. Required.
	Upstream string

	// Mode is ModeDial (the zero value) or ModePool.
	Mode Mode

	// DialTimeout bounds dialing an upstream connection and, in pool mode,
	// waiting for a free slot when Pool.Size connections are all busy.
	// If zero, DefaultDialTimeout is used. If negative, there is no bound.
	DialTimeout time.Duration

	// Pool configures the upstream pool; it is used only in ModePool.
	Pool PoolConfig

	// Seed seeds the random choices of faults that bring no seed of their
	// own, so that a run can be replayed. If zero, 1 is used.
	Seed uint64

	// Logger receives the proxy's own log lines. If nil, nothing is logged.
	Logger *slog.Logger
}

// PoolConfig configures the upstream connection pool of a ModePool proxy.
type PoolConfig struct {
	// Size is the most upstream connections open at once, busy and idle
	// together. A session that finds all of them busy waits up to
	// Config.DialTimeout for one. If zero or negative, there is no limit.
	Size int

	// MaxIdle is the most idle connections kept. If zero, Size is used when
	// it is positive, else DefaultPoolMaxIdle. If negative, no connection is
	// kept: every one is closed when its session ends.
	MaxIdle int

	// IdleTimeout is how long a connection may sit idle before it is closed.
	// If zero, DefaultPoolIdleTimeout is used. If negative, idle connections
	// never time out.
	IdleTimeout time.Duration

	// MaxLifetime is how long a connection may be used, counted from its
	// dial; one past it is closed when released or found idle. If zero,
	// DefaultPoolMaxLifetime is used. If negative, there is no limit.
	MaxLifetime time.Duration
}

// WithDefaults returns c as a proxy runs it: zero fields replaced by their
// defaults and negative durations by 0 (no limit), after checking it. It is
// what Proxy.Config returns for a proxy started with c.
func (c Config) WithDefaults() (Config, error) {
	if c.Upstream == "" {
		return c, fmt.Errorf("%w: upstream address is empty", ErrBadConfig)
	}
	if _, _, err := net.SplitHostPort(c.Upstream); err != nil {
		return c, fmt.Errorf("%w: upstream %q: %v", ErrBadConfig, c.Upstream, err)
	}
	if c.Mode != ModeDial && c.Mode != ModePool {
		return c, fmt.Errorf("%w: %v", ErrBadMode, c.Mode)
	}
	p := &c.Pool
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial timeout", c.DialTimeout}, {"pool idle timeout", p.IdleTimeout}, {"pool max lifetime", p.MaxLifetime}} {
		if d.v > MaxTimeout {
			return c, fmt.Errorf("%w: %s %v over the maximum %v (a negative one means no limit)", ErrBadConfig, d.name, d.v, MaxTimeout)
		}
	}
	if p.Size > MaxPoolSize || p.MaxIdle > MaxPoolSize {
		return c, fmt.Errorf("%w: pool size and max idle must be at most %d", ErrBadConfig, MaxPoolSize)
	}
	c.DialTimeout = durationOr(c.DialTimeout, DefaultDialTimeout)
	if p.Size < 0 {
		p.Size = 0
	}
	switch {
	case p.MaxIdle < 0:
		p.MaxIdle = 0
	case p.MaxIdle == 0 && p.Size > 0:
		p.MaxIdle = p.Size
	case p.MaxIdle == 0:
		p.MaxIdle = DefaultPoolMaxIdle
	}
	if p.Size > 0 && p.MaxIdle > p.Size {
		p.MaxIdle = p.Size
	}
	p.IdleTimeout = durationOr(p.IdleTimeout, DefaultPoolIdleTimeout)
	p.MaxLifetime = durationOr(p.MaxLifetime, DefaultPoolMaxLifetime)
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// durationOr maps 0 to def and a negative d to 0, which means "no limit".
func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
