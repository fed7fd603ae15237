package main

import "runtime/debug"

// version is faultline's version; set with -ldflags "-X main.version=...".
// Without it, the version comes from the build (see versionFrom).
var version = ""

// versionString is faultline's version: the one set at link time, else
// the one the build recorded.
func versionString() string {
	if version != "" {
		return version
	}
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(bi)
}

// versionFrom returns the version that build info bi records: the main
// module's version ("go install ...@v1.2.3", or a pseudo-version), else
// the VCS revision it was built from (12 hex digits, "+dirty" when the
// tree had changes), else "dev".
func versionFrom(bi *debug.BuildInfo) string {
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}
