import Foundation
import Networking

/// One JSON line per request (`--access-log`): when, what, who (peer and request principals), the decision and its
/// id, the status, and how long the whole request, the check and the upstream took, in microseconds.
///
/// ```json
/// {"time":"2026-12-06T01:02:03.456Z","request_id":"…","method":"GET","path":"/details/1","authority":"details",
///  "protocol":"HTTP/1.1","status":200,"decision":"allow","decision_id":"…","peer_principal":"cluster.local/ns/default/sa/sleep",
///  "request_principal":"testing@secure.istio.io/testing@secure.istio.io","source_address":"127.0.0.1",
///  "duration_us":412,"check_us":180,"upstream_us":150,"request_bytes":0,"response_bytes":178}
/// ```
public final class AccessLog: ExchangeObserver, Sendable {
    public let lines: LineLog

    public init(lines: LineLog) {
        self.lines = lines
    }

    public func exchangeFinished(_ record: ExchangeRecord, connection: ConnectionFacts) {
        lines.append(Self.line(record, connection: connection, time: Date()))
    }

    /// The JSON text of one record.
    public static func line(_ record: ExchangeRecord, connection: ConnectionFacts, time: Date) -> String {
        var out = "{\"time\":\"" + LineLog.timestamp(time) + "\""
        func string(_ key: String, _ value: String?) {
            guard let value else { return }
            out += ",\"" + key + "\":"
            appendQuoted(value, to: &out)
        }
        func number(_ key: String, _ value: Int?) {
            guard let value else { return }
            out += ",\"" + key + "\":" + String(value)
        }
        string("request_id", record.requestID.isEmpty ? nil : record.requestID)
        string("method", record.method.isEmpty ? nil : record.method)
        string("path", record.target.isEmpty ? nil : record.target)
        string("authority", record.authority.isEmpty ? nil : record.authority)
        string("protocol", connection.httpProtocol)
        number("status", record.status)
        number("grpc_status", record.grpcStatus)
        string("decision", record.outcome.rawValue)
        string("decision_id", record.decisionID)
        string("check_failure", record.checkFailure?.rawValue)
        string("upstream_failure", record.upstreamFailure)
        string("peer_principal", record.peerPrincipal)
        string("request_principal", record.requestPrincipal)
        string("source_address", connection.sourceAddress)
        number("duration_us", Int(record.totalNanos / 1000))
        number("check_us", record.checkNanos.map { Int($0 / 1000) })
        number("upstream_us", record.upstreamNanos.map { Int($0 / 1000) })
        number("request_bytes", record.requestBodyBytes)
        number("response_bytes", record.responseBodyBytes)
        return out + "}"
    }

    /// `value` as a JSON string (quotes, backslashes and control characters escaped).
    static func appendQuoted(_ value: String, to out: inout String) {
        out += "\""
        var plainFrom = value.unicodeScalars.startIndex
        var index = plainFrom
        let scalars = value.unicodeScalars
        while index != scalars.endIndex {
            let scalar = scalars[index]
            if scalar == "\"" || scalar == "\\" || scalar.value < 0x20 || scalar.value == 0x7F {
                out.unicodeScalars.append(contentsOf: scalars[plainFrom..<index])
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
                plainFrom = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainFrom..<index])
        out += "\""
    }
}

/// Several observers as one.
public struct ObserverChain: ExchangeObserver {
    public let observers: [any ExchangeObserver]

    public init(_ observers: [any ExchangeObserver]) {
        self.observers = observers
    }

    public func exchangeFinished(_ record: ExchangeRecord, connection: ConnectionFacts) {
        for observer in observers { observer.exchangeFinished(record, connection: connection) }
    }
}
