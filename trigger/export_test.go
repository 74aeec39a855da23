package trigger

import "net/http"

// Parse verifies and parses a delivery, as Deliver does before anything
// else.
func Parse(forge string, h http.Header, body []byte, secret string) (*Event, error) {
	if err := verify(forge, h, body, secret); err != nil {
		return nil, err
	}
	return parse(forge, h, body)
}
