/// A workload's labels as Warden writes them in logs and reports: `{app=details,version=v1}`, keys in order.
public func labelsText(_ labels: [String: String], separator: String = ",") -> String {
    "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: separator) + "}"
}
