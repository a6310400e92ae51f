package main

// Just enough protobuf for envoy.service.auth.v3: CheckRequest written by hand (as Benchmarks/check-request.py
// does), the fields of CheckResponse the soak reads.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

func varint(n uint64) []byte {
	var out []byte
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}

func ld(field int, payload []byte) []byte {
	out := varint(uint64(field<<3 | 2))
	out = append(out, varint(uint64(len(payload)))...)
	return append(out, payload...)
}

func lds(field int, s string) []byte { return ld(field, []byte(s)) }

func vi(field int, n uint64) []byte { return append(varint(uint64(field<<3)), varint(n)...) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// A map<string,string> entry.
func entry(field int, k, v string) []byte { return ld(field, cat(lds(1, k), lds(2, v))) }

// Address{socket_address: SocketAddress{address, port_value}}.
func address(ip string, port uint64) []byte { return ld(1, ld(1, cat(lds(2, ip), vi(3, port)))) }

// The gRPC message (5-byte prefix and CheckRequest) asking about c, as an Istio sidecar's ext_authz filter sends it.
func (c check) frame(id int) []byte {
	rid := fmt.Sprintf("soak-%d", id)
	source := cat(address("10.1.2.3", 43210), lds(4, c.principal))
	dest := address("10.1.2.9", 8080)
	host := c.app + ":8080"
	headers := [][2]string{{":authority", host}, {":method", c.method}, {":path", c.path},
		{"x-request-id", rid}, {"x-forwarded-proto", "http"}}
	headers = append(headers, c.headers...)
	http := cat(lds(1, rid), lds(2, c.method))
	for _, h := range headers {
		http = append(http, entry(3, h[0], h[1])...)
	}
	http = cat(http, lds(4, c.path), lds(5, host), lds(6, "http"), lds(10, "HTTP/1.1"))
	attrs := cat(ld(1, source), ld(2, dest), ld(4, ld(2, http)),
		entry(10, "destination.namespace", c.namespace),
		entry(10, "destination.workload_labels", fmt.Sprintf(`{"app":%q}`, c.app)))
	msg := ld(1, attrs)
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// What the soak reads from a CheckResponse: status.code and the denial's x-warden-reason header.
type answer struct {
	code   uint64
	reason string
}

type field struct {
	num   int
	wire  int
	value uint64 // varint
	bytes []byte // length-delimited
}

func fields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			f.value, b = v, b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errors.New("bad length")
			}
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		case 1:
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			b = b[8:]
		case 5:
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

// Calls f with the payload of each length-delimited field `num` of the message b.
func each(b []byte, num int, f func([]byte) error) error {
	all, err := fields(b)
	if err != nil {
		return err
	}
	for _, x := range all {
		if x.num == num && x.wire == 2 {
			if err := f(x.bytes); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reads a gRPC-framed CheckResponse: status (1) {code (1)}, denied_response (2) {headers (2) repeated
// HeaderValueOption {header (1) {key (1), value (2)}}}.
func parseCheckResponse(body []byte) (answer, error) {
	if len(body) < 5 || body[0] != 0 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		return answer{}, fmt.Errorf("bad gRPC message framing (%d bytes)", len(body))
	}
	var a answer
	err := each(body[5:], 1, func(status []byte) error {
		codes, err := fields(status)
		for _, c := range codes {
			if c.num == 1 && c.wire == 0 {
				a.code = c.value
			}
		}
		return err
	})
	if err != nil {
		return answer{}, err
	}
	err = each(body[5:], 2, func(denied []byte) error {
		return each(denied, 2, func(option []byte) error {
			return each(option, 1, func(header []byte) error {
				var key, value []byte
				each(header, 1, func(k []byte) error { key = k; return nil })
				each(header, 2, func(v []byte) error { value = v; return nil })
				if string(key) == "x-warden-reason" {
					a.reason = string(value)
				}
				return nil
			})
		})
	})
	return a, err
}
