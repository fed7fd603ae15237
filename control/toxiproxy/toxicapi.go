package toxiproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"

	"github.com/faultline-proxy/faultline/faults"
	"github.com/faultline-proxy/faultline/internal/names"
	"github.com/faultline-proxy/faultline/proxy"
)

// Toxic is a toxic as toxiproxy writes it.
type Toxic struct {
	Attributes any     `json:"attributes"`
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Stream     string  `json:"stream"`
	Toxicity   float32 `json:"toxicity"`
}

// toxicView is one toxic of a proxy: made through this API (rec), or a
// fault made through faultline's own that a toxic type describes.
type toxicView struct {
	json   Toxic
	dir    faults.Direction
	rec    *toxicRecord   // nil for a derived toxic
	faults []faults.Fault // what it is made of, as in force
	order  uint64
}

// toxicList returns the toxics of the faultline proxy fl: upstream ones
// first, then downstream ones, each in the order they were added. Records
// whose faults were changed or removed through faultline's API are
// dropped. Called with mu held.
func (s *Server) toxicList(fl string) ([]toxicView, error) {
	fs, err := s.cs.Faults(fl)
	if err != nil {
		return nil, errProxyNotFound
	}
	byName := make(map[string]faults.Fault, len(fs))
	for _, f := range fs {
		byName[f.Name] = f
	}
	covered := map[string]bool{}
	var out []toxicView
	recs := s.toxics[fl][:0:0]
	for _, rec := range s.toxics[fl] {
		intact := true
		for _, f := range rec.faults {
			if have, ok := byName[f.Name]; !ok || !reflect.DeepEqual(have, f) {
				intact = false
			}
		}
		if !intact {
			continue
		}
		recs = append(recs, rec)
		for _, f := range rec.faults {
			covered[f.Name] = true
		}
		out = append(out, toxicView{
			json: Toxic{Attributes: rec.attrs, Name: rec.name, Type: typeOf(rec.attrs), Stream: rec.stream, Toxicity: rec.toxicity},
			dir:  rec.dir, rec: rec, faults: rec.faults, order: rec.seq,
		})
	}
	s.toxics[fl] = recs
	for i, f := range fs {
		if covered[f.Name] {
			continue
		}
		attrs, stream, tox, ok := derive(f)
		if !ok {
			continue
		}
		dir, _ := parseStream(stream)
		out = append(out, toxicView{
			json: Toxic{Attributes: attrs, Name: f.Name, Type: typeOf(attrs), Stream: stream, Toxicity: tox},
			dir:  dir, faults: []faults.Fault{f}, order: 1<<62 + uint64(i),
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].dir != out[j].dir {
			return out[i].dir == faults.Up
		}
		return out[i].order < out[j].order
	})
	return out, nil
}

// findToxic returns the named toxic of fl. Called with mu held.
func (s *Server) findToxic(fl, name string) (toxicView, error) {
	ts, err := s.toxicList(fl)
	if err != nil {
		return toxicView{}, err
	}
	for _, t := range ts {
		if t.json.Name == name {
			return t, nil
		}
	}
	return toxicView{}, errToxicNotFound
}

func (s *Server) listToxics(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, err := s.toxicList(flName(args[0]))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]Toxic, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.json)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getToxic(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.findToxic(flName(args[0]), args[1])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t.json)
}

func (s *Server) createToxic(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fl := flName(args[0])
	if _, err := s.cs.Proxy(fl); err != nil {
		s.writeError(w, r, errProxyNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, r, readError(err))
		return
	}
	t, err := s.addToxicJSON(fl, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t) // 200, as toxiproxy answers
}

// addToxicJSON makes the toxic a create body describes, checking in
// toxiproxy's order: the body decodes, the stream, the default name, the
// type, the name is free, the attributes decode; then faultline's own
// bounds. Called with mu held.
func (s *Server) addToxicJSON(fl string, body []byte) (Toxic, error) {
	// Two passes, as toxiproxy's: the wrapper (named as its type, which
	// its decoding errors name), then the attributes once the type is
	// known. Each reads the body's first JSON value only.
	type ToxicWrapper struct {
		Name       string     `json:"name"`
		Type       string     `json:"type"`
		Stream     string     `json:"stream"`
		Toxicity   float32    `json:"toxicity"`
		Attributes *NoopToxic `json:"attributes"`
	}
	w := ToxicWrapper{Stream: "downstream", Toxicity: 1}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&w); err != nil {
		return Toxic{}, badBody(err)
	}
	dir, ok := parseStream(w.Stream)
	if !ok {
		return Toxic{}, errInvalidStream
	}
	if w.Name == "" {
		w.Name = fmt.Sprintf("%s_%s", w.Type, w.Stream)
	}
	attrs := newAttrs(w.Type)
	if attrs == nil {
		return Toxic{}, errInvalidType
	}
	if _, err := s.findToxic(fl, w.Name); err == nil {
		return Toxic{}, errToxicExists
	}
	// An error names the field as toxiproxy's does
	// (LatencyToxic.attributes.latency).
	a := struct {
		Attributes any `json:"attributes"`
	}{attrs}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&a); err != nil {
		return Toxic{}, badBody(err)
	}
	rec, err := s.makeToxic(fl, w.Name, w.Stream, dir, w.Toxicity, attrs, nil)
	if err != nil {
		return Toxic{}, err
	}
	return Toxic{Attributes: rec.attrs, Name: rec.name, Type: typeOf(rec.attrs), Stream: rec.stream, Toxicity: rec.toxicity}, nil
}

// makeToxic builds the toxic's faults and puts them in force, in place of
// old (the faults of the toxic it replaces, if any): a fault of the same
// kind is updated in place, others are added before old ones are removed,
// so that the stream is never left without either. Called with mu held.
func (s *Server) makeToxic(fl, name, stream string, dir faults.Direction, toxicity float32, attrs any, old *toxicView) (*toxicRecord, error) {
	info, err := s.cs.Proxy(fl)
	if err != nil {
		return nil, errProxyNotFound
	}
	fs, err := build(attrs, dir, toxicity, toxicSeed(info.Seed, name))
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, err.Error())
	}
	var oldFaults []faults.Fault
	if old != nil {
		oldFaults = old.faults
	}
	have, err := s.cs.Faults(fl)
	if err != nil {
		return nil, errProxyNotFound
	}
	taken := map[string]bool{}
	for _, f := range have {
		taken[f.Name] = true
	}
	var made, added []faults.Fault
	var keep []string // old faults updated in place
	undo := func() {
		for _, f := range added {
			_ = s.cs.RemoveFault(fl, f.Name)
		}
	}
	for i, f := range fs {
		if i < len(oldFaults) && oldFaults[i].Kind == f.Kind {
			f.Name = oldFaults[i].Name
			keep = append(keep, f.Name)
			if reflect.DeepEqual(mustNormal(f), oldFaults[i]) {
				made = append(made, oldFaults[i])
				continue
			}
			nf, err := s.cs.UpdateFault(fl, f)
			if err != nil {
				undo()
				return nil, err
			}
			made = append(made, nf)
			continue
		}
		f.Name = faultName(name, i, taken)
		taken[f.Name] = true
		nf, err := s.cs.AddFault(fl, f)
		if err != nil {
			undo()
			return nil, err
		}
		made, added = append(made, nf), append(added, nf)
	}
	for _, f := range oldFaults {
		if !slices.Contains(keep, f.Name) {
			_ = s.cs.RemoveFault(fl, f.Name)
		}
	}
	rec := &toxicRecord{name: name, stream: stream, dir: dir, toxicity: toxicity, attrs: attrs, faults: made}
	if old != nil && old.rec != nil {
		rec.seq = old.rec.seq
		i := slices.Index(s.toxics[fl], old.rec)
		if i >= 0 {
			s.toxics[fl][i] = rec
			return rec, nil
		}
	}
	if old != nil && old.rec == nil {
		rec.seq = old.order // a derived toxic keeps its place
	} else {
		s.seq++
		rec.seq = s.seq
	}
	s.toxics[fl] = append(s.toxics[fl], rec)
	return rec, nil
}

func mustNormal(f faults.Fault) faults.Fault {
	nf, err := f.Normalized()
	if err != nil {
		return f
	}
	return nf
}

// faultName names the i-th fault of toxic toxic: the toxic's name when
// faultline takes it as a fault name, else a form of it that it takes;
// ".close" marks the second fault of a timeout toxic. A name taken gets a
// number.
func faultName(toxic string, i int, taken map[string]bool) string {
	base := toxic
	if !names.Valid(base) || len(base) > 48 {
		base = flName(toxic)
		if len(base) > 48 {
			base = base[len(base)-48:]
		}
	}
	if i > 0 {
		base += ".close"
	}
	name := base
	for n := 2; taken[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}

// requestedToxic finds the toxic a request names (args: proxy, toxic), or
// answers the request with why not (ok false): 404 for the proxy first, as
// toxiproxy checks it first. Called with mu held.
func (s *Server) requestedToxic(w http.ResponseWriter, r *http.Request, args []string) (fl string, t toxicView, ok bool) {
	fl = flName(args[0])
	if _, err := s.cs.Proxy(fl); err != nil {
		s.writeError(w, r, errProxyNotFound)
		return "", toxicView{}, false
	}
	t, err := s.findToxic(fl, args[1])
	if err != nil {
		s.writeError(w, r, err)
		return "", toxicView{}, false
	}
	return fl, t, true
}

// updateToxic merges the body onto the toxic: attributes given replace
// theirs, the others and an absent toxicity keep their values; name, type
// and stream cannot change.
func (s *Server) updateToxic(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fl, t, ok := s.requestedToxic(w, r, args)
	if !ok {
		return
	}
	attrs := cloneAttrs(t.json.Attributes)
	b := struct {
		Attributes any     `json:"attributes"`
		Toxicity   float32 `json:"toxicity"`
	}{attrs, t.json.Toxicity}
	if err := decodeBody(r, &b); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.makeToxic(fl, t.json.Name, t.json.Stream, t.dir, b.Toxicity, attrs, &t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Toxic{Attributes: rec.attrs, Name: rec.name, Type: typeOf(rec.attrs), Stream: rec.stream, Toxicity: rec.toxicity})
}

func (s *Server) deleteToxic(w http.ResponseWriter, r *http.Request, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fl, t, ok := s.requestedToxic(w, r, args)
	if !ok {
		return
	}
	stalled := s.timeoutConns(fl, t)
	for _, f := range t.faults {
		_ = s.cs.RemoveFault(fl, f.Name)
	}
	for _, id := range stalled {
		_ = s.cs.CloseConn(fl, id, proxy.FIN)
	}
	if t.rec != nil {
		s.toxics[fl] = slices.DeleteFunc(s.toxics[fl], func(r *toxicRecord) bool { return r == t.rec })
	}
	w.WriteHeader(http.StatusNoContent)
}

// timeoutConns returns the connections a timeout toxic holds (its
// blackhole is in force on them), which its removal closes; none for
// other toxics. Called with mu held.
func (s *Server) timeoutConns(fl string, t toxicView) []uint64 {
	if t.json.Type != "timeout" || len(t.faults) == 0 {
		return nil
	}
	cs, err := s.cs.Conns(fl)
	if err != nil {
		return nil
	}
	var ids []uint64
	for _, c := range cs {
		if slices.Contains(c.Faults, t.faults[0].Name) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
