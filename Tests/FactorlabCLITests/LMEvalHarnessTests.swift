import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

/// lm-evaluation-harness itself (`lm_eval --model local-completions`) against `factorlab serve`, on
/// a LAMBADA-style task defined by a local YAML file over a local data file (no hub access): its
/// per-example log-likelihoods and greedy flags must equal `factorlab eval --task lambada`'s to 1e-4.
/// `.ci/install` installs lm-eval into .build/lm-eval (or set FACTORLAB_LM_EVAL to an `lm_eval`).
final class LMEvalHarnessTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static var lmEval: String? {
        let candidates: [String?] = [ProcessInfo.processInfo.environment["FACTORLAB_LM_EVAL"],
                          CLI.repository.appendingPathComponent(".build/lm-eval/bin/lm_eval").path]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func testHarnessLogLikelihoodsThroughTheServerEqualFactorlabsOwn() throws {
        guard let lmEval = Self.lmEval else {
            throw XCTSkip("lm_eval not installed (.ci/install puts it in .build/lm-eval; or set FACTORLAB_LM_EVAL)")
        }
        let recipe = CLI.tinyRecipe(name: "base", steps: 3).replacingOccurrences(of: "n_positions: 32", with: "n_positions: 64")
        try recipe.write(to: dir.appendingPathComponent("base.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try CLI.run(["pretrain", "base.yaml"], in: dir).status, 0)

        let texts = ["the cat sat on the mat", "a dog ran to the log", "the mat and the cat sat", "the dog sat on the mat",
                     "a cat and a dog ran", "the log sat on the dog"]
        let data = dir.appendingPathComponent("lambada.jsonl")
        try texts.map { #"{"text": "\#($0)"}"# }.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let tasks = dir.appendingPathComponent("tasks")
        try FileManager.default.createDirectory(at: tasks, withIntermediateDirectories: true)
        // lambada_openai's own prompt: the text without its last word, then " " + the last word.
        try """
        task: fl_lambada
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: \(data.path)
        test_split: test
        output_type: loglikelihood
        doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}"
        doc_to_target: "{{' '+text.split(' ')[-1]}}"
        target_delimiter: ""
        metric_list:
          - {metric: perplexity, aggregation: perplexity, higher_is_better: false}
          - {metric: acc, aggregation: mean, higher_is_better: true}
        metadata: {version: 1.0}
        """.write(to: tasks.appendingPathComponent("fl_lambada.yaml"), atomically: true, encoding: .utf8)

        // The server, on a free port.
        let server = Process()
        server.executableURL = CLI.executable
        server.arguments = ["serve", "--model", "runs/base", "--port", "0", "--name", "tiny"]
        server.currentDirectoryURL = dir
        let err = Pipe()
        server.standardError = err
        server.standardOutput = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        var port: Int?
        var seen = ""
        let deadline = Date().addingTimeInterval(60)
        while port == nil && Date() < deadline && server.isRunning {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { usleep(20_000); continue }
            seen += String(decoding: chunk, as: UTF8.self)
            if let r = seen.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(seen[r].split(separator: ":").last!)
            }
        }
        let p = try XCTUnwrap(port, "server did not start: \(seen)")
        XCTAssertTrue(waitForHealth(port: p), "server never became healthy")

        let out = dir.appendingPathComponent("lm-eval-out")
        let run = Process()
        run.executableURL = URL(fileURLWithPath: lmEval)
        run.arguments = ["--model", "local-completions",
                         "--model_args", "model=tiny,base_url=http://127.0.0.1:\(p)/v1/completions,tokenized_requests=True,max_length=65",
                         "--tasks", "fl_lambada", "--include_path", tasks.path, "--batch_size", "2",
                         "--output_path", out.path, "--log_samples"]
        run.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["HF_DATASETS_OFFLINE"] = "1"; env["HF_HUB_OFFLINE"] = "1"; env["HF_HOME"] = dir.appendingPathComponent("hf").path
        run.environment = env
        let log = dir.appendingPathComponent("lm-eval.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        run.standardOutput = handle
        run.standardError = handle
        try run.run()
        run.waitUntilExit()
        try handle.close()
        let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(run.terminationStatus, 0, String(logText.suffix(3000)))

        // The harness's per-sample log-likelihoods (samples_fl_lambada_*.jsonl), by doc_id.
        let files = FileManager.default.enumerator(at: out, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        let samples = try XCTUnwrap(files.first { $0.lastPathComponent.hasPrefix("samples_fl_lambada") }, "no samples file in \(files)")
        var harness: [Int: (Double, Bool)] = [:]
        for line in try String(contentsOf: samples, encoding: .utf8).split(separator: "\n") {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try XCTUnwrap(o["doc_id"] as? Int)
            let resp = try XCTUnwrap(((o["resps"] as? [[Any]])?.first?.first as? [Any]), "\(o)")
            let ll = try XCTUnwrap(Double("\(resp[0])")), greedy = "\(resp[1])" == "True"
            harness[id] = (ll, greedy)
        }
        XCTAssertEqual(harness.count, texts.count)

        let own = try JSONSerialization.jsonObject(with: Data(try CLI.run(["eval", "--model", "runs/base", "--task", "lambada",
                                                                           "--data", data.path, "--json"], in: dir).stdout.utf8)) as? [String: Any]
        let perExample = try XCTUnwrap(own?["per_example"] as? [[String: Any]])
        XCTAssertEqual(perExample.count, texts.count)
        // The harness's aggregate perplexity (per example) is factorlab's harness_perplexity.
        let results = try XCTUnwrap(files.first { $0.lastPathComponent.hasPrefix("results_") })
        let agg = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(contentsOf: results)) as? [String: Any])?["results"]
                                    as? [String: Any])?["fl_lambada"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(agg["perplexity,none"] as? Double), try XCTUnwrap(own?["harness_perplexity"] as? Double),
                       accuracy: 1e-4 * (own?["harness_perplexity"] as? Double ?? 1))
        XCTAssertEqual(try XCTUnwrap(agg["acc,none"] as? Double), try XCTUnwrap(own?["accuracy"] as? Double), accuracy: 1e-12)
        for (i, e) in perExample.enumerated() {
            let (ll, greedy) = try XCTUnwrap(harness[i])
            XCTAssertEqual(ll, try XCTUnwrap(e["log_likelihood"] as? Double), accuracy: 1e-4, "example \(i): \(texts[i])")
            XCTAssertEqual(greedy, e["greedy"] as? Bool, "example \(i)")
        }
    }

    func waitForHealth(port: Int) -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let done = DispatchSemaphore(value: 0)
            let ok = CLI.Box()
            URLSession.shared.dataTask(with: URL(string: "http://127.0.0.1:\(port)/health")!) { _, response, _ in
                if (response as? HTTPURLResponse)?.statusCode == 200 { ok.data = Data([1]) }
                done.signal()
            }.resume()
            done.wait()
            if !ok.data.isEmpty { return true }
            usleep(50_000)
        }
        return false
    }
}
