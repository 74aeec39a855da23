package gantry

// MaxNameLength bounds app, service and environment names: a DNS label.
const MaxNameLength = 63

// ValidName checks the name of an app, a service, an environment or a
// namespace; kind says which, for the message. Names end up in host names,
// process names, container and Kubernetes object names, hence the rules of
// a DNS label: lower-case letters, digits and '-', not first or last, at
// most 63 characters. It is the one home of that rule: the manifest, the
// API, the drivers and the CLI all call it.
func ValidName(kind, name string) error {
	if isDNSLabel(name) {
		return nil
	}
	return Errorf(EINVALID, "invalid %s name %q: use lowercase letters, digits and '-' (not first or last), at most %d characters", kind, clipName(name), MaxNameLength)
}

func isDNSLabel(s string) bool {
	if s == "" || len(s) > MaxNameLength || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// clipName keeps a message readable when the bad name is long.
func clipName(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
