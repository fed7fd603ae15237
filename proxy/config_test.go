package proxy

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   PoolConfig
		want PoolConfig
	}{
		{"zero", PoolConfig{}, PoolConfig{MaxIdle: DefaultPoolMaxIdle, IdleTimeout: DefaultPoolIdleTimeout, MaxLifetime: DefaultPoolMaxLifetime}},
		{"size caps idle", PoolConfig{Size: 8}, PoolConfig{Size: 8, MaxIdle: 8, IdleTimeout: DefaultPoolIdleTimeout, MaxLifetime: DefaultPoolMaxLifetime}},
		{"idle above size", PoolConfig{Size: 4, MaxIdle: 10}, PoolConfig{Size: 4, MaxIdle: 4, IdleTimeout: DefaultPoolIdleTimeout, MaxLifetime: DefaultPoolMaxLifetime}},
		{"negative disables", PoolConfig{Size: -1, MaxIdle: -1, IdleTimeout: -1, MaxLifetime: -1}, PoolConfig{}},
		{"explicit", PoolConfig{MaxIdle: 3, IdleTimeout: time.Second, MaxLifetime: time.Minute}, PoolConfig{MaxIdle: 3, IdleTimeout: time.Second, MaxLifetime: time.Minute}},
		{"at the bounds", PoolConfig{Size: MaxPoolSize, IdleTimeout: MaxTimeout, MaxLifetime: MaxTimeout}, PoolConfig{Size: MaxPoolSize, MaxIdle: MaxPoolSize, IdleTimeout: MaxTimeout, MaxLifetime: MaxTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Config{Upstream: "127.0.0.1:1", Pool: tt.in}.WithDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if got.Pool != tt.want {
				t.Errorf("pool config = %+v, want %+v", got.Pool, tt.want)
			}
			if got.DialTimeout != DefaultDialTimeout {
				t.Errorf("dial timeout = %s, want %s", got.DialTimeout, DefaultDialTimeout)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no upstream", Config{}, ErrBadConfig},
		{"no port", Config{Upstream: "localhost"}, ErrBadConfig},
		{"bad mode", Config{Upstream: "127.0.0.1:1", Mode: 7}, ErrBadMode},
		{"dial timeout past the bound", Config{Upstream: "127.0.0.1:1", DialTimeout: MaxTimeout + 1}, ErrBadConfig},
		{"idle timeout past the bound", Config{Upstream: "127.0.0.1:1", Mode: ModePool, Pool: PoolConfig{IdleTimeout: math.MaxInt64}}, ErrBadConfig},
		{"lifetime past the bound", Config{Upstream: "127.0.0.1:1", Mode: ModePool, Pool: PoolConfig{MaxLifetime: MaxTimeout + 1}}, ErrBadConfig},
		{"pool size past the bound", Config{Upstream: "127.0.0.1:1", Mode: ModePool, Pool: PoolConfig{Size: MaxPoolSize + 1}}, ErrBadConfig},
		{"max idle past the bound", Config{Upstream: "127.0.0.1:1", Mode: ModePool, Pool: PoolConfig{MaxIdle: math.MaxInt}}, ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Listen("127.0.0.1:0", tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Errorf("Listen error = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParseMode("pooled"); !errors.Is(err, ErrBadMode) {
		t.Errorf("ParseMode(pooled) error = %v, want ErrBadMode", err)
	}
}

func TestEventJSON(t *testing.T) {
	e := Event{Seq: 3, Kind: EventDiscarded, Conn: 1, Upstream: 2, Reason: ReasonError, Err: os.ErrDeadlineExceeded}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind":"discarded"`, `"reason":"error"`, `"err":"i/o timeout"`, `"upstream":2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}
