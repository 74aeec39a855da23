package proxy

import (
	"strings"

	"github.com/gantry-dev/gantry"
)

// normalizeHost lower-cases host, strips the port and one trailing dot, and
// reports whether what remains is a plausible host name or IP literal. It
// returns a substring of host (no allocation) unless it had to lower-case.
func normalizeHost(host string) (string, bool) {
	var buf [maxHostLen + 2]byte
	h, ok := appendNormalizedHost(buf[:0], host)
	if !ok {
		return "", false
	}
	if i := strings.Index(host, string(h)); i >= 0 {
		return host[i : i+len(h)], true
	}
	return string(h), true
}

// appendNormalizedHost is normalizeHost for the hot path: it writes into dst
// (a caller's stack buffer) and never grows it past maxHostLen+2.
func appendNormalizedHost(dst []byte, host string) ([]byte, bool) {
	h := host
	if len(h) > 0 && h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 2 || !validPort(h[end+1:]) {
			return dst, false
		}
		ip := h[1:end]
		if len(ip) > 45 {
			return dst, false
		}
		dst = append(dst, '[')
		for i := 0; i < len(ip); i++ {
			c := ip[i]
			switch {
			case c >= 'A' && c <= 'F':
				dst = append(dst, c+'a'-'A')
			case c >= 'a' && c <= 'f', c >= '0' && c <= '9', c == ':', c == '.':
				dst = append(dst, c)
			default:
				return dst[:0], false
			}
		}
		return append(dst, ']'), true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i:]) {
			return dst, false
		}
		h = h[:i]
	}
	if len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	if h == "" || len(h) > maxHostLen {
		return dst, false
	}
	prev := byte('.') // a leading dot is an empty label
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if prev == '.' {
				return dst[:0], false
			}
		default:
			return dst[:0], false
		}
		dst = append(dst, c)
		prev = c
	}
	return dst, true
}

// validPort accepts "" or ":" followed by at most five digits.
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) > 6 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normalizeRouteHost validates a configured host, which may be a wildcard
// "*.example.com" but carries no port.
func normalizeRouteHost(h string) (string, error) {
	wild := false
	rest := h
	if r, ok := strings.CutPrefix(h, "*."); ok {
		wild, rest = true, r
	}
	if strings.ContainsAny(rest, ":[]*") {
		return "", gantry.Errorf(gantry.EINVALID, "route host %q: want a host name or *.domain, without a port", h)
	}
	n, ok := normalizeHost(rest)
	if !ok {
		return "", gantry.Errorf(gantry.EINVALID, "route host %q is not a valid host name", h)
	}
	if wild {
		return "*." + n, nil
	}
	return n, nil
}
