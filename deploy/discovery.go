package deploy

import (
	"net"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Discovery: every instance of a slot is told where the http services of
// that same slot listen, so a candidate talks to the candidate's siblings
// and is verified and switched as a whole. The addresses are decided before
// the slot's first instance starts (the driver reserves the ports), kept in
// the slot record, and reused when a service of the slot is restarted in
// place, so its siblings, which are not restarted, still find it.

// Discovery variable names: GANTRY_SERVICE_<NAME>_URL and friends, with
// NAME the service name upper-cased and '-' written '_'.
const (
	discoveryPrefix   = "GANTRY_SERVICE_"
	discoveryURL      = "_URL"
	discoveryAddr     = "_ADDR"
	discoveryAddrs    = "_ADDRS"
	discoveryLoopback = "127.0.0.1"
)

// planAddrs gives every http service instance of m a port ahead of its
// start, keeping the addresses slot already has. It does nothing for a
// driver that cannot reserve ports (the instances then get no discovery
// variables).
func planAddrs(drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest) error {
	pr, ok := drv.(gantry.PortReserver)
	if !ok {
		return nil
	}
	for _, s := range m.ServicesInOrder() {
		if !s.HTTP {
			continue
		}
		for len(slot.Addrs[s.Name]) < s.Instances {
			p, err := pr.ReservePort()
			if err != nil {
				return err
			}
			if slot.Addrs == nil {
				slot.Addrs = map[string][]string{}
			}
			slot.Addrs[s.Name] = append(slot.Addrs[s.Name], net.JoinHostPort(discoveryLoopback, strconv.Itoa(p)))
		}
	}
	return nil
}

// plannedPort is the port planned for instance i (from 1) of service, or 0.
func plannedPort(slot *gantry.Slot, service string, i int) int {
	as := slot.Addrs[service]
	if i < 1 || i > len(as) {
		return 0
	}
	_, port, err := net.SplitHostPort(as[i-1])
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(port)
	return p
}

// discoveryVars are the variables that tell an instance where the http
// services of its slot are: _URL and _ADDR name the first instance,
// _ADDRS every instance, comma-separated.
func discoveryVars(slot *gantry.Slot) map[string]string {
	vars := map[string]string{}
	for svc, as := range slot.Addrs {
		if len(as) == 0 {
			continue
		}
		key := DiscoveryVar(svc)
		vars[key+discoveryURL] = "http://" + as[0]
		vars[key+discoveryAddr] = as[0]
		vars[key+discoveryAddrs] = strings.Join(as, ",")
	}
	return vars
}

// DiscoveryVar is the prefix of the variables that locate service:
// GANTRY_SERVICE_<NAME>, to which _URL, _ADDR and _ADDRS are appended.
func DiscoveryVar(service string) string {
	return discoveryPrefix + strings.ToUpper(strings.ReplaceAll(service, "-", "_"))
}
