import Foundation
import XCTest
@testable import FactorlabTasks

/// Every fixture file against the same file read by the Python reference (csv with
/// QUOTE_NONE, as GLUE's loaders), then the quirks one by one.
final class GLUEDatasetTests: XCTestCase {
    func testEveryFixtureFileMatchesThePythonReader() throws {
        let reference = try Fixtures.section("glue_loaded")
        var checked = 0
        for task in GLUETask.allCases {
            for split in task.splits {
                let name = try task.fileName(split)
                let expected = try XCTUnwrap(reference[name] as? [String: Any], "no reference for \(name)")
                let rows = try XCTUnwrap(expected["examples"] as? [[String: Any]])
                let data = try GLUEDataset(task: task, split: split, root: Fixtures.glueRoot)
                XCTAssertEqual(data.examples.count, rows.count, name)
                XCTAssertEqual(data.skippedMalformedRows, (expected["skipped"] as? NSNumber)?.intValue, name)
                for (example, row) in zip(data.examples, rows) {
                    XCTAssertEqual(example.id, row["id"] as? String, name)
                    XCTAssertEqual(example.textA, row["textA"] as? String, name)
                    XCTAssertEqual(example.textB, row["textB"] as? String, name)
                    XCTAssertEqual(example.label, (row["label"] as? NSNumber)?.intValue, name)
                    XCTAssertEqual(example.score, (row["score"] as? NSNumber)?.doubleValue, name)
                    XCTAssertEqual(example.line, (row["line"] as? NSNumber)?.intValue, name)
                    XCTAssertEqual(example.textB == nil, !task.isPairTask, name)
                    if split.isTest { XCTAssertNil(example.label ?? example.score.map { Int($0) }, name) }
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 29)  // 8 tasks x 3 files + MNLI's 5
    }

    func testHeaderlessCoLAAndCRLF() throws {
        let train = try GLUEDataset(task: .cola, split: .train, root: Fixtures.glueRoot)
        XCTAssertEqual(train.examples.map(\.label), [1, 1, 0, 0])
        XCTAssertEqual(train.examples[2].textA, "They drank the pub.")
        XCTAssertEqual(train.examples.map(\.id), ["0", "1", "2", "3"])
        // dev.tsv has CRLF line ends: no "\r" may survive at the end of the sentence.
        let dev = try GLUEDataset(task: .cola, split: .dev, root: Fixtures.glueRoot)
        XCTAssertEqual(dev.examples.count, 3)
        XCTAssertEqual(dev.examples[2].textA, "Bill whistled past the house.")
        XCTAssertEqual(dev.examples.map(\.line), [1, 2, 3])
        let test = try GLUEDataset(task: .cola, split: .test, root: Fixtures.glueRoot)
        XCTAssertEqual(test.examples.map(\.id), ["0", "1"])
        XCTAssertEqual(test.examples[1].textA, "The car honked its way down the road.")
    }

    func testCRLFWithLabelInTheLastColumn() throws {
        let dev = try GLUEDataset(task: .rte, split: .dev, root: Fixtures.glueRoot)
        XCTAssertEqual(dev.examples.map(\.label), [1, 0])  // not_entailment, entailment
        XCTAssertEqual(dev.examples[1].textB, "Bacteria is winning the war against antibiotics.")
    }

    func testQuotesAreOrdinaryCharacters() throws {
        let train = try GLUEDataset(task: .sst2, split: .train, root: Fixtures.glueRoot)
        XCTAssertEqual(train.examples[3].textA, "the film 's \" twist \" is that there is none ")
        XCTAssertEqual(train.examples[3].label, 0)
        XCTAssertEqual(train.examples[0].textA, "hide new secretions from the parental units ")
        let test = try GLUEDataset(task: .sst2, split: .test, root: Fixtures.glueRoot)
        XCTAssertEqual(test.examples[2].textA, "a \"quirky\" comedy .")
        XCTAssertEqual(test.examples[2].id, "2")
    }

    func testMRPCWithByteOrderMark() throws {
        let train = try GLUEDataset(task: .mrpc, split: .train, root: Fixtures.glueRoot)
        XCTAssertEqual(train.examples.map(\.label), [1, 0, 1])
        XCTAssertEqual(train.examples[0].textA,
                       "Amrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence .")
        XCTAssertEqual(train.examples[1].textB,
                       "Yucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .")
        let test = try GLUEDataset(task: .mrpc, split: .test, root: Fixtures.glueRoot)
        XCTAssertEqual(test.examples.map(\.id), ["0", "1"])
        XCTAssertTrue(test.examples[0].textA.hasPrefix("PCCW 's chief operating officer"))
    }

    func testQQPSkipsMalformedRowsAndCountsThem() throws {
        let train = try GLUEDataset(task: .qqp, split: .train, root: Fixtures.glueRoot)
        XCTAssertEqual(train.skippedMalformedRows, 2)
        XCTAssertEqual(train.skippedLines, [4, 5])
        XCTAssertEqual(train.examples.map(\.id), ["133273", "402555", "360472"])
        XCTAssertEqual(train.examples.map(\.label), [0, 1, 1])
        XCTAssertEqual(train.examples[2].line, 6)
        let dev = try GLUEDataset(task: .qqp, split: .dev, root: Fixtures.glueRoot)
        XCTAssertEqual(dev.skippedMalformedRows, 0)
        XCTAssertEqual(dev.examples[0].textA, "What is the best way to learn \"Python\"?")
    }

    func testSTSBScoresAndMNLISplits() throws {
        let train = try GLUEDataset(task: .stsb, split: .train, root: Fixtures.glueRoot)
        XCTAssertEqual(train.examples.map(\.score), [5.0, 3.8, 3.8, 0.4])
        XCTAssertEqual(train.examples.map(\.label), [nil, nil, nil, nil])
        XCTAssertEqual(train.examples[3].textA, "It depends on what you mean by \"good\".")
        let matched = try GLUEDataset(task: .mnli, split: .dev, root: Fixtures.glueRoot)
        XCTAssertEqual(matched.examples.map(\.label), [1, 2, 0])  // neutral, contradiction, entailment
        let mismatched = try GLUEDataset(task: .mnli, split: .devMismatched, root: Fixtures.glueRoot)
        XCTAssertEqual(mismatched.examples.map(\.label), [2, 2])
        XCTAssertEqual(mismatched.examples[1].textB, "Dictionaries are indeed exercises in bi-unique substitutability.")
        let testMM = try GLUEDataset(task: .mnli, split: .testMismatched, root: Fixtures.glueRoot)
        XCTAssertEqual(testMM.examples.map(\.textB), ["So what's your decision?", "I did not."])
        let train2 = try GLUEDataset(task: .mnli, split: .train, root: Fixtures.glueRoot)
        XCTAssertEqual(train2.examples.map(\.label), [1, 0, 0, 2])
        XCTAssertEqual(train2.examples[0].textB, "Product and geography are what make cream skimming work. ")
    }

    func testInMemoryContents() throws {
        let data = Data("\u{FEFF}index\tsentence1\tsentence2\tlabel\r\n\r\n7\ta\tb\t1\r\n".utf8)
        let set = try GLUEDataset(task: .wnli, split: .train, contents: data, fileName: "mem.tsv")
        XCTAssertEqual(set.examples, [GLUEExample(id: "7", textA: "a", textB: "b", label: 1, line: 3)])
    }
}
