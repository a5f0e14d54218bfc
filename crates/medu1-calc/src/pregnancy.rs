//! Pregnancy date calculators: due date, conception date, gestational age ([`crate::dates`] has
//! the date arithmetic).

use crate::error::CalcError;
use crate::inputs::Inputs;
use crate::spec::{CalcAnswer, Calculator, InputKind, OutputType, opt, req};

const LMP: &str = "Last menstrual date";
const CYCLE: &str = "cycle length";

/// Naegele's rule: LMP + 280 days, shifted by the cycle's difference from 28 days.
fn due_date(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let lmp = i.date(LMP)?;
    let cycle = i.number_opt(CYCLE)?.unwrap_or(28.0);
    Ok(CalcAnswer::Date(
        lmp.add_days(280 + (cycle.round() as i64 - 28)),
    ))
}

/// LMP + 2 weeks (the benchmark ignores cycle length here).
fn conception(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    Ok(CalcAnswer::Date(i.date(LMP)?.add_days(14)))
}

fn gestational_age(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let lmp = i.date(LMP)?;
    let today = i.date("Current Date")?;
    let days = today.to_days() - lmp.to_days();
    if days < 0 {
        return Err(CalcError::invalid(
            "Current Date",
            "before the last menstrual date",
        ));
    }
    Ok(CalcAnswer::WeekDay {
        weeks: days / 7,
        days: days % 7,
    })
}

const DATE_RANGE: (f64, f64) = (0.0, 0.0);

pub(crate) const CALCULATORS: &[Calculator] = &[
    Calculator {
        id: 13,
        name: "Estimated Due Date",
        slug: "due-date",
        output: OutputType::Date,
        question: "Using Naegele's Rule for estimated due date based on the last menstrual period and cycle length, what is the the patient's estimated due date? Your response should be in the format of M/D/Y (ie 08/31/2023, 07/03/2000) with just the date and not other text. ",
        inputs: &[
            req(LMP, InputKind::Date, "last menstrual period", DATE_RANGE),
            opt(
                CYCLE,
                InputKind::Number,
                "cycle length (days)",
                (21.0, 35.0),
            ),
        ],
        compute: due_date,
    },
    Calculator {
        id: 68,
        name: "Estimated of Conception",
        slug: "conception-date",
        output: OutputType::Date,
        question: "Based on the patient's last menstrual period and cycle length, what is the the patient's estimated date of conception? Your answer should be in the format of M/D/Y (ie 08/31/2023, 07/03/2000) with just the date and not other text. ",
        inputs: &[
            req(LMP, InputKind::Date, "last menstrual period", DATE_RANGE),
            opt(
                CYCLE,
                InputKind::Number,
                "cycle length (days)",
                (21.0, 35.0),
            ),
        ],
        compute: conception,
    },
    Calculator {
        id: 69,
        name: "Estimated Gestational Age",
        slug: "gestational-age",
        output: OutputType::WeekDay,
        question: "Based on the patient's last menstrual period, what is the patient's estimated gestational age? Your answer should be a tuple, specifying the number of weeks and days (i.e. (4 weeks, 3 days), (0 weeks, 5 days), (1 week, 5 days), (8 weeks, 0 days)).",
        inputs: &[
            req("Current Date", InputKind::Date, "today's date", DATE_RANGE),
            req(LMP, InputKind::Date, "last menstrual period", DATE_RANGE),
        ],
        compute: gestational_age,
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// This file's calculator with this id (the registry is the union of such tables).
    fn by_id(id: u32) -> Option<&'static crate::spec::Calculator> {
        super::CALCULATORS.iter().find(|c| c.id == id)
    }

    fn run(id: u32, e: serde_json::Value) -> String {
        by_id(id)
            .unwrap()
            .compute_json(&e)
            .unwrap()
            .to_answer_string()
    }

    #[test]
    fn one_shot_examples() {
        // Naegele: 02/24/2000 + 40 weeks = 11/30/2000, cycle 30 → +2 days.
        assert_eq!(
            run(
                13,
                json!({"Last menstrual date": "02/24/2000", "cycle length": 30})
            ),
            "12/02/2000"
        );
        assert_eq!(
            run(
                68,
                json!({"Last menstrual date": "01/07/2017", "cycle length": 28})
            ),
            "01/21/2017"
        );
        assert_eq!(
            run(
                69,
                json!({"Current Date": "08/21/2021", "Last menstrual date": "12/23/2020"})
            ),
            "('34 weeks', '3 days')"
        );
    }
}
