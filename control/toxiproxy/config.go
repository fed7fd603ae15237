package toxiproxy

import (
	"encoding/json"
	"fmt"
	"io"
)

// LoadConfig creates or replaces the proxies of a toxiproxy-server
// -config file: a JSON array in POST /populate's form,
//
//	[{"name": "redis", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379",
//	  "toxics": [{"type": "latency", "attributes": {"latency": 100}}]}]
//
// with, unlike toxiproxy, the toxics each proxy starts with. It returns
// the proxies made or kept, in order; on an error, those done before it.
func (s *Server) LoadConfig(r io.Reader) ([]Proxy, error) {
	var list []proxyBody
	if err := json.NewDecoder(r).Decode(&list); err != nil {
		return nil, fmt.Errorf("toxiproxy config: %w", err)
	}
	done, err := s.populateList(list)
	if err != nil {
		return done, fmt.Errorf("toxiproxy config: %w", err)
	}
	return done, nil
}
