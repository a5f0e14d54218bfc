//! Point scores (CHA2DS2-VASc, HAS-BLED, Wells, Child-Pugh, CURB-65, Centor, GCS, PERC, SIRS, ...).
//!
//! Scores are graded by exact match, so thresholds follow the benchmark's explanations exactly
//! (e.g. HAS-BLED age > 65, CURB-65 BUN > 19 mg/dL, Centor's McIsaac age bands) and anything the
//! note does not mention counts as absent, as the benchmark assumes.

use crate::error::CalcError;
use crate::inputs::Inputs;
use crate::spec::{CalcAnswer, Calculator, InputKind, InputSpec, OutputType, opt, req};
use crate::units::Analyte;

use InputKind::Quantity as Q;
const F: InputKind = InputKind::Flag;
const NONE: (f64, f64) = (0.0, 0.0);
const BPM: Analyte = Analyte::Plain("beats per minute");
const MMHG: Analyte = Analyte::Plain("mm Hg");

fn pts(b: bool, p: i64) -> i64 {
    if b { p } else { 0 }
}

fn int(n: i64) -> Result<CalcAnswer, CalcError> {
    Ok(CalcAnswer::Integer(n))
}

fn cha2ds2_vasc(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let age = i.age()?;
    let mut s = if age >= 75.0 {
        2
    } else if age >= 65.0 {
        1
    } else {
        0
    };
    s += pts(i.female()?, 1);
    s += pts(i.flag("Congestive Heart Faliure")?, 1);
    s += pts(i.flag("Hypertension history")?, 1);
    let stroke = i.flag("Stroke")?
        || i.flag("Transient Ischemic Attacks History")?
        || i.flag("Thromboembolism history")?;
    s += pts(stroke, 2);
    s += pts(i.flag("Vascular disease history")?, 1);
    s += pts(i.flag("Diabetes history")?, 1);
    int(s)
}

/// Wells' criteria for PE; the benchmark reports it as a decimal (1.5-point items).
fn wells_pe(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let mut s = 0.0;
    if i.flag("Clinical signs and symptoms of Deep Vein Thrombosis")? {
        s += 3.0;
    }
    if i.flag("Pulmonary Embolism is #1 diagnosis OR equally likely")? {
        s += 3.0;
    }
    if i.quantity_opt("Heart Rate or Pulse", BPM)?
        .is_some_and(|hr| hr > 100.0)
    {
        s += 1.5;
    }
    if i.flag("Immobilization for at least 3 days")? || i.flag("Surgery in the previous 4 weeks")? {
        s += 1.5;
    }
    if i.flag("Previously Documented Pulmonary Embolism")?
        || i.flag("Previously documented Deep Vein Thrombosis")?
    {
        s += 1.5;
    }
    if i.flag("Hemoptysis")? {
        s += 1.0;
    }
    if i.flag("Malignancy with treatment within 6 months or palliative")? {
        s += 1.0;
    }
    Ok(CalcAnswer::Decimal(s))
}

fn child_pugh(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let bili = i.quantity("Bilirubin", Analyte::Bilirubin)?;
    let alb = i.quantity("Albumin", Analyte::Albumin)?;
    let inr = i.number("international normalized ratio")?;
    let mut s = if bili < 2.0 {
        1
    } else if bili <= 3.0 {
        2
    } else {
        3
    };
    s += if alb > 3.5 {
        1
    } else if alb >= 2.8 {
        2
    } else {
        3
    };
    s += if inr < 1.7 {
        1
    } else if inr <= 2.3 {
        2
    } else {
        3
    };
    s += match i.choice("Ascites")?.as_deref() {
        None | Some("absent" | "false") => 1,
        Some("slight" | "mild") => 2,
        Some("moderate" | "severe" | "true") => 3,
        Some(o) => {
            return Err(CalcError::invalid(
                "Ascites",
                format!("unknown grade `{o}`"),
            ));
        }
    };
    s += match i.choice("Encephalopathy")?.as_deref() {
        None | Some("no encephalopathy" | "grade 0" | "false") => 1,
        Some("grade 1-2") => 2,
        Some("grade 3-4") => 3,
        Some(o) => {
            return Err(CalcError::invalid(
                "Encephalopathy",
                format!("unknown grade `{o}`"),
            ));
        }
    };
    int(s)
}

fn wells_dvt(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let mut s = 0;
    for key in [
        "Active cancer",
        "Calf swelling >3 centimeters compared to the other leg",
        "Collateral (nonvaricose) superficial veins present",
        "Entire Leg Swollen",
        "Localized tenderness along the deep venous system",
        "Pitting edema, confined to symptomatic leg",
        "Paralysis, paresis, or recent plaster immobilization of the lower extremity",
        "Previously documented Deep Vein Thrombosis",
    ] {
        s += pts(i.flag(key)?, 1);
    }
    let bedridden = i.flag("Bedridden recently >3 days or major surgery within 12 weeks")?
        || i.flag("Major surgery within 12 weeks")?;
    s += pts(bedridden, 1);
    s -= pts(
        i.flag("Alternative diagnosis to Deep Vein Thrombosis as likely or more likely")?,
        2,
    );
    int(s)
}

/// Modified Centor (McIsaac): age 3–14 +1, 15–44 0, ≥ 45 −1.
fn centor(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let age = i.age()?;
    let mut s = if (3.0..15.0).contains(&age) {
        1
    } else if age >= 45.0 {
        -1
    } else {
        0
    };
    s += pts(i.flag("Exudate or swelling on tonsils")?, 1);
    s += pts(i.flag("Tender/swollen anterior cervical lymph nodes")?, 1);
    s += pts(
        i.quantity_opt("Temperature", Analyte::Temperature)?
            .is_some_and(|t| t > 38.0),
        1,
    );
    // An unmentioned cough is assumed absent, which scores (the one-shot explanation's rule).
    s += pts(!i.has("Cough Absent") || i.flag("Cough Absent")?, 1);
    int(s)
}

/// Glasgow Coma Scale; "not testable" or unmentioned gets the component's full score.
fn gcs(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let eye = match i.choice("Best eye response")?.as_deref() {
        Some("eyes open spontaneously") | Some("not testable") | None => 4,
        Some("eye opening to verbal command") => 3,
        Some("eye opening to pain") => 2,
        Some("no eye opening") => 1,
        Some(o) => {
            return Err(CalcError::invalid(
                "Best eye response",
                format!("unknown response `{o}`"),
            ));
        }
    };
    let verbal = match i.choice("Best verbal response")?.as_deref() {
        Some("oriented") | Some("not testable") | None => 5,
        Some("confused") => 4,
        Some("inappropriate words") => 3,
        Some("incomprehensible sounds") => 2,
        Some("no verbal response") => 1,
        Some(o) => {
            return Err(CalcError::invalid(
                "Best verbal response",
                format!("unknown response `{o}`"),
            ));
        }
    };
    let motor = match i.choice("Best motor response")?.as_deref() {
        Some("obeys commands") | Some("not testable") | None => 6,
        Some("localizes pain") => 5,
        Some("withdrawal from pain") => 4,
        Some("flexion to pain") => 3,
        Some("extension to pain") => 2,
        Some("no motor response") => 1,
        Some(o) => {
            return Err(CalcError::invalid(
                "Best motor response",
                format!("unknown response `{o}`"),
            ));
        }
    };
    int(eye + verbal + motor)
}

fn has_bled(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let mut s = pts(i.age()? > 65.0, 1);
    s += pts(
        i.number_opt("Number of Alcoholic Drinks Per Week")?
            .is_some_and(|d| d >= 8.0),
        1,
    );
    for key in [
        "Hypertension history",
        "Liver disease criteria for the HAS-BLED rule",
        "Renal disease criteria for the HAS-BLED rule",
        "Stroke",
        "Prior major bleeding or predisposition to bleeding",
        "Labile international normalized ratio",
        "Medication usage predisposing to bleeding",
    ] {
        s += pts(i.flag(key)?, 1);
    }
    int(s)
}

fn curb65(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let mut s = pts(i.age()? >= 65.0, 1);
    s += pts(i.flag("Confusion")?, 1);
    s += pts(
        i.quantity_opt("Blood Urea Nitrogen (BUN)", Analyte::Bun)?
            .is_some_and(|b| b > 19.0),
        1,
    );
    s += pts(
        i.number_opt("respiratory rate")?.is_some_and(|r| r >= 30.0),
        1,
    );
    let sbp = i.quantity_opt("Systolic Blood Pressure", MMHG)?;
    let dbp = i.quantity_opt("Diastolic Blood Pressure", MMHG)?;
    s += pts(
        sbp.is_some_and(|v| v < 90.0) || dbp.is_some_and(|v| v <= 60.0),
        1,
    );
    int(s)
}

fn perc(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let mut s = pts(i.age()? >= 50.0, 1);
    s += pts(
        i.quantity_opt("Heart Rate or Pulse", BPM)?
            .is_some_and(|h| h >= 100.0),
        1,
    );
    s += pts(
        i.number_opt("O₂ saturation percentage")?
            .is_some_and(|o| o < 95.0),
        1,
    );
    for key in [
        "Unilateral Leg Swelling",
        "Hemoptysis",
        "Recent surgery or trauma",
        "Hormone use",
    ] {
        s += pts(i.flag(key)?, 1);
    }
    let prior = i.flag("Previously Documented Pulmonary Embolism")?
        || i.flag("Previously documented Deep Vein Thrombosis")?;
    s += pts(prior, 1);
    int(s)
}

fn sirs(i: &Inputs) -> Result<CalcAnswer, CalcError> {
    let mut s = pts(
        i.quantity_opt("Temperature", Analyte::Temperature)?
            .is_some_and(|t| !(36.0..=38.0).contains(&t)),
        1,
    );
    s += pts(
        i.quantity_opt("Heart Rate or Pulse", BPM)?
            .is_some_and(|h| h > 90.0),
        1,
    );
    let rr = i.number_opt("respiratory rate")?.is_some_and(|r| r > 20.0);
    let paco2 = i.number_opt("PaCO₂")?.is_some_and(|p| p < 32.0);
    s += pts(rr || paco2, 1);
    let wbc = i
        .quantity_opt("White blood cell count", Analyte::CellCount)?
        .is_some_and(|w| !(4000.0..=12000.0).contains(&w));
    let bands = i.number_opt("Band form numbers")?.is_some_and(|b| b > 10.0);
    s += pts(wbc || bands, 1);
    int(s)
}

const I_AGE: InputSpec = req("age", Q(Analyte::Age), "age", (18.0, 95.0));
const I_SEX: InputSpec = req("sex", InputKind::Choice(&["Male", "Female"]), "sex", NONE);
const I_HR: InputSpec = req("Heart Rate or Pulse", Q(BPM), "heart rate", (50.0, 140.0));

const fn calc(
    id: u32,
    name: &'static str,
    slug: &'static str,
    question: &'static str,
    inputs: &'static [InputSpec],
    compute: fn(&Inputs) -> Result<CalcAnswer, CalcError>,
) -> Calculator {
    Calculator {
        id,
        name,
        slug,
        output: OutputType::Integer,
        question,
        inputs,
        compute,
    }
}

pub(crate) const CALCULATORS: &[Calculator] = &[
    calc(
        4,
        "CHA2DS2-VASc Score for Atrial Fibrillation Stroke Risk",
        "cha2ds2-vasc",
        "What is the patient's CHA2DS2-VASc Score?",
        &[
            I_SEX,
            I_AGE,
            opt(
                "Congestive Heart Faliure",
                F,
                "congestive heart failure",
                NONE,
            ),
            opt("Stroke", F, "prior stroke", NONE),
            opt(
                "Transient Ischemic Attacks History",
                F,
                "prior transient ischemic attack",
                NONE,
            ),
            opt("Thromboembolism history", F, "prior thromboembolism", NONE),
            opt(
                "Vascular disease history",
                F,
                "vascular disease (prior myocardial infarction or peripheral artery disease)",
                NONE,
            ),
            opt("Diabetes history", F, "diabetes mellitus", NONE),
            opt("Hypertension history", F, "hypertension", NONE),
        ],
        cha2ds2_vasc,
    ),
    Calculator {
        output: OutputType::Decimal,
        ..calc(
            8,
            "Wells' Criteria for Pulmonary Embolism",
            "wells-pe",
            "What is the patient’s score of Wells' criteria for Pulmonary Embolism?",
            &[
                I_HR,
                opt(
                    "Previously Documented Pulmonary Embolism",
                    F,
                    "previously documented pulmonary embolism",
                    NONE,
                ),
                opt(
                    "Immobilization for at least 3 days",
                    F,
                    "immobilization for at least 3 days",
                    NONE,
                ),
                opt(
                    "Malignancy with treatment within 6 months or palliative",
                    F,
                    "malignancy treated within 6 months",
                    NONE,
                ),
                opt(
                    "Pulmonary Embolism is #1 diagnosis OR equally likely",
                    F,
                    "pulmonary embolism as the leading diagnosis",
                    NONE,
                ),
                opt(
                    "Surgery in the previous 4 weeks",
                    F,
                    "surgery in the previous 4 weeks",
                    NONE,
                ),
                opt(
                    "Previously documented Deep Vein Thrombosis",
                    F,
                    "previously documented deep vein thrombosis",
                    NONE,
                ),
                opt("Hemoptysis", F, "hemoptysis", NONE),
                opt(
                    "Clinical signs and symptoms of Deep Vein Thrombosis",
                    F,
                    "clinical signs of deep vein thrombosis",
                    NONE,
                ),
            ],
            wells_pe,
        )
    },
    calc(
        15,
        "Child-Pugh Score for Cirrhosis Mortality",
        "child-pugh",
        "What is the patient's Child-Pugh Score?",
        &[
            req(
                "international normalized ratio",
                InputKind::Number,
                "INR",
                (0.9, 3.5),
            ),
            opt(
                "Ascites",
                InputKind::Choice(&["absent", "slight", "moderate"]),
                "ascites",
                NONE,
            ),
            req("Albumin", Q(Analyte::Albumin), "albumin", (1.8, 4.8)),
            opt(
                "Encephalopathy",
                InputKind::Choice(&["No Encephalopathy", "Grade 1-2", "Grade 3-4"]),
                "encephalopathy",
                NONE,
            ),
            req(
                "Bilirubin",
                Q(Analyte::Bilirubin),
                "total bilirubin",
                (0.3, 6.0),
            ),
        ],
        child_pugh,
    ),
    calc(
        16,
        "Wells' Criteria for DVT",
        "wells-dvt",
        "What is the patient's Wells' criteria score for Deep Vein Thrombosis?",
        &[
            opt("Active cancer", F, "active cancer", NONE),
            opt(
                "Bedridden recently >3 days or major surgery within 12 weeks",
                F,
                "bedridden for more than 3 days recently",
                NONE,
            ),
            opt(
                "Major surgery within 12 weeks",
                F,
                "major surgery within 12 weeks",
                NONE,
            ),
            opt(
                "Paralysis, paresis, or recent plaster immobilization of the lower extremity",
                F,
                "recent plaster immobilization of the leg",
                NONE,
            ),
            opt(
                "Previously documented Deep Vein Thrombosis",
                F,
                "previously documented deep vein thrombosis",
                NONE,
            ),
            req(
                "Alternative diagnosis to Deep Vein Thrombosis as likely or more likely",
                F,
                "an alternative diagnosis at least as likely as DVT",
                NONE,
            ),
            opt(
                "Calf swelling >3 centimeters compared to the other leg",
                F,
                "calf swelling more than 3 cm compared with the other leg",
                NONE,
            ),
            opt(
                "Collateral (nonvaricose) superficial veins present",
                F,
                "collateral superficial veins",
                NONE,
            ),
            opt("Entire Leg Swollen", F, "entire leg swollen", NONE),
            opt(
                "Localized tenderness along the deep venous system",
                F,
                "localized tenderness along the deep venous system",
                NONE,
            ),
            opt(
                "Pitting edema, confined to symptomatic leg",
                F,
                "pitting edema confined to the symptomatic leg",
                NONE,
            ),
        ],
        wells_dvt,
    ),
    calc(
        20,
        "Centor Score (Modified/McIsaac) for Strep Pharyngitis",
        "centor",
        "What is the patient's Centor Score?",
        &[
            req("age", Q(Analyte::Age), "age", (3.0, 70.0)),
            opt("Cough Absent", F, "absence of cough", NONE),
            req(
                "Temperature",
                Q(Analyte::Temperature),
                "temperature",
                (36.0, 40.0),
            ),
            opt(
                "Tender/swollen anterior cervical lymph nodes",
                F,
                "tender anterior cervical lymph nodes",
                NONE,
            ),
            opt(
                "Exudate or swelling on tonsils",
                F,
                "tonsillar exudate",
                NONE,
            ),
        ],
        centor,
    ),
    calc(
        21,
        "Glasgow Coma Score (GCS)",
        "gcs",
        "What is the patient's Glasgow Coma Score?",
        &[
            req(
                "Best eye response",
                InputKind::Choice(&[
                    "eyes open spontaneously",
                    "eye opening to verbal command",
                    "eye opening to pain",
                    "no eye opening",
                ]),
                "best eye response",
                NONE,
            ),
            req(
                "Best verbal response",
                InputKind::Choice(&[
                    "oriented",
                    "confused",
                    "inappropriate words",
                    "incomprehensible sounds",
                    "no verbal response",
                ]),
                "best verbal response",
                NONE,
            ),
            req(
                "Best motor response",
                InputKind::Choice(&[
                    "obeys commands",
                    "localizes pain",
                    "withdrawal from pain",
                    "flexion to pain",
                    "extension to pain",
                    "no motor response",
                ]),
                "best motor response",
                NONE,
            ),
        ],
        gcs,
    ),
    calc(
        25,
        "HAS-BLED Score for Major Bleeding Risk",
        "has-bled",
        "What is the patient's HAS-BLED score?",
        &[
            I_AGE,
            opt("Stroke", F, "prior stroke", NONE),
            opt("Hypertension history", F, "uncontrolled hypertension", NONE),
            opt(
                "Medication usage predisposing to bleeding",
                F,
                "use of aspirin or NSAIDs",
                NONE,
            ),
            opt(
                "Liver disease criteria for the HAS-BLED rule",
                F,
                "cirrhosis",
                NONE,
            ),
            opt(
                "Number of Alcoholic Drinks Per Week",
                InputKind::Number,
                "alcoholic drinks per week",
                (0.0, 20.0),
            ),
            opt(
                "Labile international normalized ratio",
                F,
                "labile INR",
                NONE,
            ),
            opt(
                "Renal disease criteria for the HAS-BLED rule",
                F,
                "chronic dialysis",
                NONE,
            ),
            opt(
                "Prior major bleeding or predisposition to bleeding",
                F,
                "prior major bleeding",
                NONE,
            ),
        ],
        has_bled,
    ),
    calc(
        45,
        "CURB-65 Score for Pneumonia Severity",
        "curb-65",
        "What is the patient's CURB-65 score?",
        &[
            I_AGE,
            req(
                "Systolic Blood Pressure",
                Q(MMHG),
                "blood pressure (systolic)",
                (80.0, 160.0),
            ),
            req(
                "Diastolic Blood Pressure",
                Q(MMHG),
                "blood pressure (diastolic)",
                (45.0, 95.0),
            ),
            req(
                "Blood Urea Nitrogen (BUN)",
                Q(Analyte::Bun),
                "blood urea nitrogen",
                (8.0, 45.0),
            ),
            req(
                "respiratory rate",
                Q(Analyte::Plain("breaths per minute")),
                "respiratory rate",
                (12.0, 40.0),
            ),
            opt("Confusion", F, "confusion", NONE),
        ],
        curb65,
    ),
    calc(
        48,
        "PERC Rule for Pulmonary Embolism",
        "perc",
        "What are the number of criteria met for the PERC Rule for Pulmonary Embolism (PE)?",
        &[
            I_AGE,
            I_HR,
            req(
                "O₂ saturation percentage",
                Q(Analyte::Plain("%")),
                "oxygen saturation",
                (85.0, 100.0),
            ),
            opt(
                "Unilateral Leg Swelling",
                F,
                "unilateral leg swelling",
                NONE,
            ),
            opt("Hormone use", F, "estrogen use", NONE),
            opt(
                "Recent surgery or trauma",
                F,
                "recent surgery or trauma",
                NONE,
            ),
            opt(
                "Previously Documented Pulmonary Embolism",
                F,
                "previously documented pulmonary embolism",
                NONE,
            ),
            opt("Hemoptysis", F, "hemoptysis", NONE),
            opt(
                "Previously documented Deep Vein Thrombosis",
                F,
                "previously documented deep vein thrombosis",
                NONE,
            ),
        ],
        perc,
    ),
    calc(
        51,
        "SIRS Criteria",
        "sirs",
        "What is the number of SIRS critiera met by the patient?",
        &[
            req(
                "Temperature",
                Q(Analyte::Temperature),
                "temperature",
                (35.0, 40.0),
            ),
            I_HR,
            req(
                "respiratory rate",
                Q(Analyte::Plain("breaths per minute")),
                "respiratory rate",
                (12.0, 32.0),
            ),
            req(
                "White blood cell count",
                Q(Analyte::CellCount),
                "white blood cell count",
                (2000.0, 20000.0),
            ),
            opt("PaCO₂", Q(Analyte::Plain("mm Hg")), "PaCO₂", (25.0, 45.0)),
        ],
        sirs,
    ),
];

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    /// This file's calculator with this id (the registry is the union of such tables).
    fn by_id(id: u32) -> Option<&'static crate::spec::Calculator> {
        super::CALCULATORS.iter().find(|c| c.id == id)
    }

    fn score(id: u32, e: Value) -> String {
        by_id(id)
            .unwrap()
            .compute_json(&e)
            .unwrap()
            .to_answer_string()
    }

    // Worked examples from the benchmark's one-shot explanations, re-checked by hand.
    #[test]
    fn cha2ds2_vasc() {
        assert_eq!(
            score(
                4,
                json!({"sex": "Male", "age": [62, "years"], "Stroke": true})
            ),
            "2"
        );
        // 78-year-old woman with CHF, hypertension, diabetes: 2 + 1 + 1 + 1 + 1.
        let e = json!({"sex": "Female", "age": [78, "years"], "Congestive Heart Faliure": true,
                       "Hypertension history": true, "Diabetes history": true});
        assert_eq!(score(4, e), "6");
    }

    #[test]
    fn wells_pe_is_a_decimal() {
        assert_eq!(
            score(
                8,
                json!({"Heart Rate or Pulse": [150.0, "beats per minute"]})
            ),
            "1.5"
        );
        let e = json!({"Heart Rate or Pulse": [90.0, "beats per minute"], "Hemoptysis": true,
                       "Clinical signs and symptoms of Deep Vein Thrombosis": true, "Surgery in the previous 4 weeks": true});
        assert_eq!(score(8, e), "5.5");
    }

    #[test]
    fn child_pugh() {
        let e = json!({"international normalized ratio": 2.0, "Bilirubin": [2.6, "µmol/L"], "Albumin": [3.7, "g/dL"],
                       "Ascites": "absent", "Encephalopathy": "No Encephalopathy"});
        assert_eq!(score(15, e), "6");
        let e = json!({"international normalized ratio": 2.4, "Bilirubin": [3.5, "mg/dL"], "Albumin": [2.5, "g/dL"],
                       "Ascites": "moderate", "Encephalopathy": "Grade 3-4"});
        assert_eq!(score(15, e), "15");
    }

    #[test]
    fn wells_dvt() {
        let e = json!({"Active cancer": true, "Bedridden recently >3 days or major surgery within 12 weeks": false,
                       "Major surgery within 12 weeks": true, "Collateral (nonvaricose) superficial veins present": true,
                       "Localized tenderness along the deep venous system": true,
                       "Alternative diagnosis to Deep Vein Thrombosis as likely or more likely": false});
        assert_eq!(score(16, e), "4");
        let e =
            json!({"Alternative diagnosis to Deep Vein Thrombosis as likely or more likely": true});
        assert_eq!(score(16, e), "-2");
    }

    #[test]
    fn centor_mcisaac() {
        let e = json!({"age": [17, "years"], "Temperature": [40.0, "degrees celsius"]});
        assert_eq!(score(20, e), "2");
        // 14 months is under 3 years: no age point; 100.1 °F = 37.8 °C is not > 38.
        let e = json!({"age": [14, "months"], "Cough Absent": false, "Temperature": [100.1, "degrees fahreinheit"]});
        assert_eq!(score(20, e), "0");
        let e = json!({"age": [50, "years"], "Cough Absent": true, "Temperature": [38.5, "degrees celsius"],
                       "Exudate or swelling on tonsils": true});
        assert_eq!(score(20, e), "2");
    }

    #[test]
    fn gcs() {
        let e = json!({"Best eye response": "eyes open spontaneously", "Best verbal response": "no verbal response",
                       "Best motor response": "flexion to pain"});
        assert_eq!(score(21, e), "8");
        let e = json!({"Best eye response": "no eye opening", "Best verbal response": "not testable",
                       "Best motor response": "no motor response"});
        assert_eq!(score(21, e), "7");
    }

    #[test]
    fn has_bled() {
        assert_eq!(
            score(
                25,
                json!({"age": [43, "years"], "Number of Alcoholic Drinks Per Week": 0, "Hypertension history": true})
            ),
            "1"
        );
        let e =
            json!({"age": [66, "years"], "Number of Alcoholic Drinks Per Week": 8, "Stroke": true});
        assert_eq!(score(25, e), "3");
    }

    #[test]
    fn curb65() {
        let e = json!({"age": [77, "years"], "Confusion": true, "Blood Urea Nitrogen (BUN)": [40.0, "mg/dL"],
                       "respiratory rate": [23, "breaths per minute"], "Systolic Blood Pressure": [105, "mm hg"],
                       "Diastolic Blood Pressure": [52, "mm hg"]});
        assert_eq!(score(45, e), "4");
        // 7 mmol/L urea nitrogen = 19.6 mg/dL > 19.
        let e = json!({"age": [40, "years"], "Blood Urea Nitrogen (BUN)": [7.0, "mmol/L"],
                       "respiratory rate": [30, "breaths per minute"], "Systolic Blood Pressure": [120, "mm hg"],
                       "Diastolic Blood Pressure": [70, "mm hg"]});
        assert_eq!(score(45, e), "2");
    }

    #[test]
    fn perc() {
        let e = json!({"age": [64, "years"], "Heart Rate or Pulse": [72, "beats per minute"],
                       "O₂ saturation percentage": [100, "%"], "Previously Documented Pulmonary Embolism": true});
        assert_eq!(score(48, e), "2");
    }

    #[test]
    fn sirs() {
        let e = json!({"Temperature": [103, "degrees fahreinheit"], "Heart Rate or Pulse": [120.0, "beats per minute"],
                       "White blood cell count": [33000, "µL"], "respiratory rate": [32.0, "breaths per minute"],
                       "PaCO₂": [41, "mm hg"]});
        assert_eq!(score(51, e), "4");
        let e = json!({"Temperature": [37.0, "degrees celsius"], "Heart Rate or Pulse": [87.0, "bpm"],
                       "White blood cell count": [9400.0, "m^3"], "respiratory rate": [18.0, "breaths per minute"]});
        assert_eq!(score(51, e), "0");
    }
}
