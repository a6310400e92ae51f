import PolicyCore
import Rego
import Testing

@Suite struct BuiltinErrorTests {
    @Test func operandErrorsUseOPAWording() {
        let error = BuiltinError.operand(2, mustBe: "string", got: .int(1))
        #expect(error.kind == .typeError)
        #expect(error.message == "operand 2 must be string but got number")
    }
}
