// Package names checks the names of proxies and faults. Both are path
// segments of the control API's URLs (/api/v1/proxies/{name}/faults/{fault}),
// so a name is limited to characters that need no escaping, and "." and
// "..", which a URL path resolves to another endpoint, are refused.
package names

// Rule says what Valid accepts, for error messages.
const Rule = `1 to 64 letters, digits, '.', '_' or '-', other than "." and ".."`

// Valid reports whether s follows Rule.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
