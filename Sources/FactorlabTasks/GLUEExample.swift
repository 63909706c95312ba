/// One row of a GLUE file.
public struct GLUEExample: Equatable, Sendable {
    /// The row's `index`/`id` column where the file has one (test files always do; it is the
    /// first column of a submission file); otherwise the 0-based position among the file's rows.
    public var id: String
    /// The sentence (single-sentence tasks) or the first text: sentence1, question1, #1 String,
    /// QNLI's question.
    public var textA: String
    /// The second text of a pair task; nil for CoLA and SST-2.
    public var textB: String?
    /// Class index into ``GLUETask/labelNames``; nil for test rows and for STS-B.
    public var label: Int?
    /// STS-B similarity score in [0, 5]; nil for test rows and for classification tasks.
    public var score: Double?
    /// 1-based line of the row in its file, for messages that point back at the data.
    public var line: Int

    public init(id: String, textA: String, textB: String? = nil, label: Int? = nil, score: Double? = nil, line: Int) {
        self.id = id
        self.textA = textA
        self.textB = textB
        self.label = label
        self.score = score
        self.line = line
    }
}
