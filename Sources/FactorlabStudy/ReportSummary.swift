/// One family's fitted law on one axis, as reported.
public struct FitSummary: Codable, Equatable, Sendable {
    public var family: String
    public var axis: ComputeAxis
    public var sizes: [String]
    public var a: Double?
    public var b: Double?
    public var exponentSpread: Double?
    public var rmsResidual: Double?
    public var maxResidual: Double?
    public var computeStart: Double?
    public var computeEnd: Double?
    public var note: String?
}

/// What `factorlab report` produced, as values (encoded for `--json`).
public struct ReportSummary: Codable, Equatable, Sendable {
    /// The Markdown report's path.
    public var reportPath: String
    /// SVG file names, relative to the report's folder.
    public var plots: [String]
    public var runCount: Int
    /// Runs whose curves enter the frontiers, fits and budgets.
    public var includedRuns: [String]
    public var excludedRuns: [ExcludedRun]
    public var fits: [FitSummary]
    public var multipliers: [MultiplierEstimate]
    public var recommendations: [BudgetRecommendation]
    public var inferenceRecommendations: [InferenceRecommendation]
    public var localMinimum: LocalMinimumResult?
    public var replicates: Int
    public var notes: [String]

    init(analysis: StudyAnalysis, reportPath: String, plots: [String]) {
        self.reportPath = reportPath
        self.plots = plots
        runCount = analysis.runs.count
        includedRuns = analysis.groups.flatMap { $0.runs.map(\.name) }
        excludedRuns = analysis.excluded
        fits = ComputeAxis.allCases.flatMap { axis in
            (analysis.trends[axis] ?? []).map { t in
                FitSummary(family: t.family, axis: axis, sizes: t.sizes, a: t.fit?.a, b: t.fit?.b,
                           exponentSpread: t.exponentSpread, rmsResidual: t.fit?.rmsResidual, maxResidual: t.fit?.maxResidual,
                           computeStart: t.fit?.computeStart, computeEnd: t.fit?.computeEnd, note: t.note)
            }
        }
        multipliers = analysis.multipliers
        recommendations = analysis.recommendations
        inferenceRecommendations = analysis.inferenceRecommendations
        localMinimum = analysis.localMinimum
        replicates = analysis.replicateCount
        notes = analysis.notes
    }
}
