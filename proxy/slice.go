package proxy

// pieceSize draws a slice fault's next piece size from
// [Size-SizeVariation, Size+SizeVariation], from the fault's seeded
// generator (toxiproxy's slicer varies its pieces so).
func (af *activeFault) pieceSize() int {
	v := af.f.SizeVariation
	af.rngMu.Lock()
	defer af.rngMu.Unlock()
	return af.f.Size - v + af.rng.IntN(2*v+1)
}
