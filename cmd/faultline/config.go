package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/faultline-proxy/faultline/control/api"
	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/strictjson"
)

// ErrBadConfig is wrapped by every error loadConfig returns about the
// file's content.
var ErrBadConfig = errors.New("invalid config")

// config is a config file (see README, "Config file", and testdata/faultline.yaml):
//
//	control: 127.0.0.1:8470
//	token: s3cret
//	allow_origins: [http://localhost:3000]
//	allow_hosts: [ci-runner.internal]
//	insecure_control: false
//	proxies:
//	  - name: redis
//	    upstream: 127.0.0.1:6379
//	    faults:
//	      - {kind: latency, delay: 150ms}
//
// Each proxy has the fields of api.ProxySpec, and each fault those of
// faults.Fault, as in their JSON: the YAML is converted to JSON and decoded
// strictly, so an unknown field is an error and durations are strings.
type config struct {
	Control         string
	Token           string
	AllowOrigins    []string
	AllowHosts      []string
	InsecureControl bool
	Proxies         []namedSpec // where is FILE:LINE of the entry
}

// loadConfig reads and checks the config file at path. Its errors name the
// file and, where it can, the line.
func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrBadConfig, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	cfg := &config{}
	if len(doc.Content) == 0 {
		return cfg, nil // an empty file: no proxies
	}
	at := func(n *yaml.Node, format string, a ...any) error {
		return fmt.Errorf("%s:%d: %w: %s", path, n.Line, ErrBadConfig, fmt.Sprintf(format, a...))
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, at(top, "want a mapping with proxies (and control, token, allow_origins, allow_hosts, insecure_control)")
	}
	seen := map[string]int{} // proxy name -> line
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		var err error
		switch key.Value {
		case "control":
			err = val.Decode(&cfg.Control)
		case "token":
			err = val.Decode(&cfg.Token)
		case "allow_origins":
			err = val.Decode(&cfg.AllowOrigins)
		case "allow_hosts":
			if err = val.Decode(&cfg.AllowHosts); err == nil {
				for _, h := range cfg.AllowHosts {
					if herr := checkHost(h); herr != nil {
						return nil, at(val, "allow_hosts: %q: %v", h, herr)
					}
				}
			}
		case "insecure_control":
			err = val.Decode(&cfg.InsecureControl)
		case "proxies":
			if val.Kind != yaml.SequenceNode {
				return nil, at(val, "proxies: want a list")
			}
			for j, pn := range val.Content {
				spec, err := decodeProxy(pn)
				if err != nil {
					return nil, at(pn, "proxy %d%s: %v", j+1, quotedName(spec.Name), err)
				}
				if first, dup := seen[spec.Name]; dup {
					return nil, at(pn, "proxy %d%s: name used twice (first on line %d)", j+1, quotedName(spec.Name), first)
				}
				seen[spec.Name] = pn.Line
				cfg.Proxies = append(cfg.Proxies, namedSpec{spec: spec, where: fmt.Sprintf("%s:%d", path, pn.Line)})
			}
		default:
			return nil, at(key, "unknown field %q (want control, token, allow_origins, allow_hosts, insecure_control, proxies)", key.Value)
		}
		if err != nil {
			return nil, at(val, "%s: %v", key.Value, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	return cfg, nil
}

func quotedName(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", name)
}

// decodeProxy decodes one proxies entry as an api.ProxySpec, its faults one
// by one (so that an error can name the fault) and checked. It returns the
// spec decoded so far with an error, for its name.
func decodeProxy(n *yaml.Node) (api.ProxySpec, error) {
	var spec api.ProxySpec
	if n.Kind != yaml.MappingNode {
		return spec, errors.New("want a mapping with the fields of a proxy")
	}
	var faultNodes *yaml.Node
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: n.Tag, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "faults" {
			faultNodes = n.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
	}
	if err := decodeJSON(rest, &spec); err != nil {
		return spec, err
	}
	if spec.Name == "" {
		return spec, errors.New("name is required")
	}
	if faultNodes == nil {
		return spec, nil
	}
	if faultNodes.Kind != yaml.SequenceNode {
		return spec, fmt.Errorf("faults (line %d): want a list", faultNodes.Line)
	}
	for i, fn := range faultNodes.Content {
		var f faults.Fault
		err := decodeJSON(fn, &f)
		if err == nil {
			_, err = f.Normalized()
		}
		if err != nil {
			return spec, fmt.Errorf("fault %d (line %d): %v", i+1, fn.Line, err)
		}
		spec.Faults = append(spec.Faults, f)
	}
	return spec, nil
}

// decodeJSON decodes n into v as encoding/json decodes n's JSON form,
// refusing unknown fields and keys in the wrong case (YAML itself refuses
// a key given twice).
func decodeJSON(n *yaml.Node, v any) error {
	var raw any
	if err := n.Decode(&raw); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	j, err := toJSON(raw)
	if err != nil {
		return err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return strictjson.Check(b, v) // keys are case-sensitive, as in the API
}

// toJSON converts what yaml decodes into an interface to what
// encoding/json encodes: maps with string keys only.
func toJSON(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			c, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
		return v, nil
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v: keys must be strings", k)
			}
			c, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			m[ks] = c
		}
		return m, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v: want a finite number", v)
		}
		return v, nil
	case []any:
		for i, e := range v {
			c, err := toJSON(e)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	}
	return v, nil
}
