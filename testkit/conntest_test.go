package testkit

import (
	"testing"

	"github.com/faultline-proxy/faultline/proxy"
)

func TestTestConnDial(t *testing.T) { TestConn(t) }

func TestTestConnPool(t *testing.T) { TestConn(t, WithPool(proxy.PoolConfig{})) }
