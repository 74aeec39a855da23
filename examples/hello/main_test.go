package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(handler(info{Version: "1.2.3", Slot: "blue", Release: "r7", Env: "test"}))
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		contains     string
	}{
		{"GET", "/", 200, `<dd id="version">1.2.3</dd>`},
		{"GET", "/", 200, `<dd id="slot">blue</dd>`},
		{"GET", "/up", 200, "ok"},
		{"GET", "/nope", 404, ""},
		{"POST", "/", 405, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: got status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if !strings.Contains(string(body), tt.contains) {
			t.Errorf("%s %s: body %q does not contain %q", tt.method, tt.path, body, tt.contains)
		}
	}
}

func TestInjectedErrorsAreSpreadEvenly(t *testing.T) {
	for _, c := range []struct {
		percent uint64
		want    string // which of the first 20 pages fail
	}{
		{20, "....x....x....x....x"},
		{3, "...................."},
		{0, "...................."},
	} {
		f := &faults{percent: c.percent}
		var got strings.Builder
		failed := 0
		for i := 0; i < 100; i++ {
			fail := f.inject()
			if fail {
				failed++
			}
			if i < 20 {
				got.WriteByte(map[bool]byte{true: 'x', false: '.'}[fail])
			}
		}
		if got.String() != c.want || failed != int(c.percent) {
			t.Errorf("%d%%: first pages %s, %d of 100 failed; want %s and %d", c.percent, got.String(), failed, c.want, c.percent)
		}
	}
}
