import Foundation
import PolicyCore

extension ScenarioRun {
    /// How long steps that wait for something asynchronous wait when the scenario does not say.
    static func defaultWithin(_ action: Scenario.Action) -> Duration? {
        switch action {
        case .log: .seconds(5)
        case .decisionLog: .seconds(3)
        case .rotated: .seconds(60)
        default: nil
        }
    }

    /// Takes one step; returns nil when it behaved as expected, else what differed. With `within`, the step is
    /// tried again (every 100 ms) until it behaves or the time is up.
    public func perform(_ step: Scenario.Step) async -> String? {
        let deadline = (step.within ?? Self.defaultWithin(step.action)).map { ContinuousClock.now + $0 }
        var rotatedFrom: String?
        if case .rotated(let identity) = step.action { rotatedFrom = (try? value("\(identity).cert"))?.contentsIfReadable }
        while true {
            let failure: String?
            do {
                failure = try await attempt(step.action, rotatedFrom: rotatedFrom)
            } catch {
                failure = "\(error)"
            }
            guard let failure else { return nil }
            guard let deadline, ContinuousClock.now < deadline else {
                if let within = step.within { return failure + " (still, after \(within))" }
                return failure
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func attempt(_ action: Scenario.Action, rotatedFrom: String?) async throws -> String? {
        switch action {
        case .request(let request):
            return try await send(request).failure
        case .check(let check):
            return try await sendCheck(check)
        case .write(let path, let text):
            try write(path, try resolve(text))
            return nil
        case .remove(let path):
            try FileManager.default.removeItem(atPath: try self.path(path))
            return nil
        case .stop(let name):
            await stop(name)
            return nil
        case .start(let name):
            guard let component = component(name) else { return "no component `\(name)`" }
            try await start(component)
            return nil
        case .log(let name, let text):
            let wanted = try resolve(text)
            guard let process = process(name) else { return "`\(name)` was never started" }
            let log = process.standardError + process.standardOutput
            return log.contains(wanted) ? nil : "the log of `\(name)` does not mention `\(wanted)`"
        case .decisionLog(let name, let match, let expect):
            return try decision(in: name, matching: match, expect: expect)
        case .rotated(let identity):
            let current = try value("\(identity).cert").contentsIfReadable
            return current != nil && current != rotatedFrom ? nil : "the certificate of `\(identity)` has not been renewed"
        }
    }

    // MARK: - Decision logs

    func decision(in server: String, matching match: Value, expect: Value) throws -> String? {
        let match = try resolveStrings(match), expect = try resolveStrings(expect)
        let text = decisionLogPath(server).contentsIfReadable ?? ""
        let lines = text.split(separator: "\n").compactMap { try? JSONReader.parse(String($0)) }
        guard let line = lines.last(where: { ValuePattern.matches(match, $0["attributes"] ?? .null) }) else {
            return "no decision in the log of `\(server)` has attributes \(JSONWriter.string(match))"
        }
        return ValuePattern.matches(expect, line) ? nil
            : "the decision logged was \(JSONWriter.string(line)), expected it to hold \(JSONWriter.string(expect))"
    }

    func resolveStrings(_ value: Value) throws -> Value {
        switch value {
        case .string(let s): return .string(try resolve(s))
        case .array(let items): return .array(try items.map(resolveStrings))
        case .object(let map):
            var out: [Value: Value] = [:]
            for (key, item) in map { out[key] = try resolveStrings(item) }
            return .object(out)
        default: return value
        }
    }
}

/// Expected values written in a scenario, compared with what was observed.
enum ValuePattern {
    /// `expected` holds in `actual`: objects by their keys (extra keys allowed), lists when every expected
    /// element matches some actual one, strings as glob patterns (`*`), other values by equality.
    static func matches(_ expected: Value, _ actual: Value) -> Bool {
        switch (expected, actual) {
        case (.object(let want), .object(let got)):
            return want.allSatisfy { key, value in got[key].map { matches(value, $0) } ?? (value == .null) }
        case (.array(let want), .array(let got)):
            return want.allSatisfy { item in got.contains { matches(item, $0) } }
        case (.string(let pattern), .string(let text)):
            return glob(pattern, text)
        default:
            return expected == actual
        }
    }

    /// `*` matches any run of characters; everything else matches itself.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
        guard parts.count > 1 else { return pattern == text }
        guard text.hasPrefix(parts[0]) else { return false }
        var rest = text.dropFirst(parts[0].count)
        for (index, part) in parts.enumerated().dropFirst() {
            if index == parts.count - 1 { return rest.hasSuffix(part) && rest.count >= part.count }
            guard let found = rest.range(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }
}
