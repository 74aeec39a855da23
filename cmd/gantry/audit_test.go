package main

import (
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"24h", now.Add(-24 * time.Hour), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"2026-11-22T01:00:00Z", time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC), true},
		{"2026-11-21", time.Date(2026, 11, 21, 0, 0, 0, 0, time.Local), true},
		{"-5m", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err == nil) != tt.ok || (tt.ok && !got.Equal(tt.want)) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestShortOperation(t *testing.T) {
	for in, want := range map[string]string{
		"POST /v1/apps/{app}/environments/{env}/deploy": "POST deploy",
		"POST /v1/apps/{app}/releases":                  "POST releases",
		"DELETE /v1/tokens/{name}":                      "DELETE tokens/{name}",
		"odd":                                           "odd",
	} {
		if got := shortOperation(in); got != want {
			t.Errorf("shortOperation(%q) = %q, want %q", in, got, want)
		}
	}
}
