package gantry

import "testing"

func TestHumanSeconds(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0s", 0.0004: "1ms", 0.035: "35ms", 1.5: "1.5s", 59.94: "59.9s", 270: "4m30s", 7500: "2h05m", 3 * 86400: "3.0d",
	} {
		if got := HumanSeconds(in); got != want {
			t.Errorf("HumanSeconds(%v) = %q, want %q", in, got, want)
		}
	}
}
